"""API tokens: minted from the configured database, checked on every request.

Lookups are cached for a couple of seconds so authentication stays off the hot
path; a revocation therefore reaches every replica within ``CACHE_SECONDS``.
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
    ) -> tuple[TokenRecord, str]:
        """Create a token; the plain secret is returned once and never stored."""
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"unknown role {role!r}", field="role") from None
        secret = tokens.new_token()
        record = TokenRecord(
            id=token_id or str(uuid.uuid4()),
            name=name,
            role=parsed.value,
            token_hash=tokens.digest(secret),
            created_at=time.time(),
            executor_id=executor_id,
        )
        await self._store.create_token(record)
        return record, secret

    async def create(self, principal: Principal, role: str, name: str) -> tuple[TokenRecord, str]:
        require(principal, Action.ADMIN)
        return await self.mint(role, name)

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
                principal = Principal(
                    id=record.id,
                    name=record.name,
                    role=Role(record.role),
                    executor_id=record.executor_id,
                )
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
