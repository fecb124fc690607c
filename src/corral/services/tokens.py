"""API tokens: minted from the configured database, checked on every request.

Lookups are cached for a couple of seconds so authentication stays off the hot
path; a revocation therefore reaches every replica within ``CACHE_SECONDS``.

A token with the ``agent`` role is bound to one project: it is good only on that
project's TaskDriver agent routes and for logging its agents in, and the leases
it takes belong to it (``Principal.credential_id`` is its own id).
"""

from __future__ import annotations

import time
import uuid

from corral.auth import tokens
from corral.auth.policy import Action, require
from corral.domain.principals import Principal, Role
from corral.errors import InvalidInput, Unauthenticated
from corral.store.base import Store, TokenRecord

CACHE_SECONDS = 2.0


class TokenService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[Principal | None, float]] = {}

    async def mint(
        self,
        role: str,
        name: str,
        executor_id: str | None = None,
        token_id: str | None = None,
        project_id: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """Create a token; the plain secret is returned once and never stored."""
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"unknown role {role!r}", field="role") from None
        await self._check_project(parsed, project_id)
        secret = tokens.new_token()
        record = TokenRecord(
            id=token_id or str(uuid.uuid4()),
            name=name,
            role=parsed.value,
            token_hash=tokens.digest(secret),
            created_at=time.time(),
            executor_id=executor_id,
            project_id=project_id,
        )
        await self._store.create_token(record)
        return record, secret

    async def _check_project(self, role: Role, project_id: str | None) -> None:
        """An agent token without a project would be an agent of every project."""
        if role is not Role.AGENT:
            if project_id is not None:
                raise InvalidInput("only agent tokens are bound to a project", field="project_id")
            return
        if not project_id:
            raise InvalidInput("an agent token needs a project_id", field="project_id")
        if await self._store.get_project(project_id) is None:
            raise InvalidInput(f"no project {project_id!r}", field="project_id")

    async def create(
        self, principal: Principal, role: str, name: str, project_id: str | None = None
    ) -> tuple[TokenRecord, str]:
        require(principal, Action.ADMIN)
        return await self.mint(role, name, project_id=project_id)

    async def has_admin(self) -> bool:
        return any(t.role == Role.ADMIN and not t.revoked for t in await self._store.list_tokens())

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthenticated("missing bearer token")
        key = tokens.digest(secret)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            principal = cached[0]
        else:
            record = await self._store.find_token(key)
            principal = None
            if record is not None and not record.revoked:
                principal = _principal_of(record)
            if len(self._cache) > 10000:
                self._cache.clear()
            self._cache[key] = (principal, now + CACHE_SECONDS)
        if principal is None:
            raise Unauthenticated("invalid or revoked token")
        return principal

    async def revoke_for_executor(self, executor_id: str) -> None:
        """Revoke a worker's own tokens and drop the cache, so they stop here at once."""
        if await self._store.revoke_executor_tokens(executor_id):
            self._cache.clear()


def _principal_of(record: TokenRecord) -> Principal | None:
    """None for an agent token bound to no project (minted before tokens were bound):
    it would otherwise act in every project."""
    agent = record.role == Role.AGENT
    if agent and record.project_id is None:
        return None
    return Principal(
        id=record.id,
        name=record.name,
        role=Role(record.role),
        executor_id=record.executor_id,
        project_id=record.project_id,
        credential_id=record.id if agent else None,
    )
