"""API tokens: minted, listed and revoked by admins (and by users for themselves), checked
on every request.

Lookups are cached for a couple of seconds so authentication stays off the hot
path; a revocation therefore reaches every replica within ``CACHE_SECONDS`` (at
once on the replica that revoked it). A token may carry an expiry, checked on
every request against the wall clock. Its last use is recorded at most once per
``TOUCH_SECONDS`` per token and replica: a write per request would put a commit
on every call's path, and "last used" is only read by people, to the minute.

A token with the ``agent`` role is bound to one project: it is good only on that
project's TaskDriver agent routes and for logging its agents in, and the leases
it takes belong to it (``Principal.credential_id`` is its own id).

A personal token is minted by a signed-in user for themselves (``user_id``): it
speaks as that user, with the user's *current* role, and stops when the user is
disabled or deleted. It lets a person use the CLI or the SDK without putting a
password or a 24-hour login JWT in a script.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from corral.auth import tokens
from corral.auth.policy import Action, require
from corral.domain.principals import Principal, Role
from corral.errors import CorralError, InvalidInput, NotFound, Unauthenticated
from corral.store.base import Store
from corral.store.fleet_port import TokenRecord

log = logging.getLogger("corral.services.tokens")
CACHE_SECONDS = 2.0
TOUCH_SECONDS = 60.0
MAX_LIFETIME_SECONDS = 10 * 366 * 86400  # an expiry further than this is a typo
PERSONAL_ROLES = frozenset({Role.ADMIN, Role.SUBMITTER, Role.VIEWER})


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token as answers show it: never its hash, never its secret."""

    id: str
    name: str
    role: str
    created_at: float
    revoked: bool
    expires_at: float | None
    last_used_at: float | None
    user_id: str | None
    project_id: str | None
    executor_id: str | None

    @classmethod
    def of(cls, record: TokenRecord) -> TokenView:
        return cls(
            record.id,
            record.name,
            record.role,
            record.created_at,
            record.revoked,
            record.expires_at,
            record.last_used_at,
            record.user_id,
            record.project_id,
            record.executor_id,
        )

    def state(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class _Cached:
    record: TokenRecord | None
    principal: Principal | None
    until: float  # monotonic


class TokenService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, _Cached] = {}
        self._touched: dict[str, float] = {}  # token id -> monotonic time of the last write

    async def mint(
        self,
        role: str,
        name: str,
        executor_id: str | None = None,
        token_id: str | None = None,
        project_id: str | None = None,
        *,
        expires_in: float | None = None,
        user_id: str | None = None,
    ) -> tuple[TokenRecord, str]:
        """Create a token; the plain secret is returned once and never stored."""
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"unknown role {role!r}", field="role") from None
        await self._check_project(parsed, project_id)
        now = time.time()
        secret = tokens.new_token()
        record = TokenRecord(
            id=token_id or str(uuid.uuid4()),
            name=name,
            role=parsed.value,
            token_hash=tokens.digest(secret),
            created_at=now,
            executor_id=executor_id,
            project_id=project_id,
            expires_at=_expiry(now, expires_in),
            user_id=user_id,
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
        self,
        principal: Principal,
        role: str,
        name: str,
        project_id: str | None = None,
        expires_in: float | None = None,
    ) -> tuple[TokenRecord, str]:
        require(principal, Action.ADMIN)
        record, secret = await self.mint(
            role, name or f"{role}-token", project_id=project_id, expires_in=expires_in
        )
        _log_change("token_created", record.id, principal)
        return record, secret

    async def create_personal(
        self, principal: Principal, name: str, expires_in: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A token for the signed-in user themselves, acting with their role."""
        user = await self._store.get_user(principal.id)
        if user is None or principal.role not in PERSONAL_ROLES:
            raise InvalidInput("only a signed-in user mints personal tokens", field="user")
        record, secret = await self.mint(
            principal.role.value, name or "personal-token", expires_in=expires_in, user_id=user.id
        )
        _log_change("personal_token_created", record.id, principal)
        return record, secret

    async def list_all(self, principal: Principal) -> list[TokenView]:
        require(principal, Action.ADMIN)
        return [TokenView.of(r) for r in await self._store.list_tokens()]

    async def list_personal(self, principal: Principal) -> list[TokenView]:
        records = await self._store.list_tokens()
        return [TokenView.of(r) for r in records if r.user_id == principal.id]

    async def revoke(self, principal: Principal, token_id: str) -> None:
        """Admins revoke any token; it stops at once here, within the cache elsewhere."""
        require(principal, Action.ADMIN)
        await self._revoke(principal, token_id)

    async def revoke_personal(self, principal: Principal, token_id: str) -> None:
        """A user revokes only their own tokens; anyone else's is not found."""
        if token_id not in {v.id for v in await self.list_personal(principal)}:
            raise NotFound("token not found", token_id=token_id)
        await self._revoke(principal, token_id)

    async def _revoke(self, principal: Principal, token_id: str) -> None:
        await self._store.revoke_token(token_id)
        self._cache.clear()
        _log_change("token_revoked", token_id, principal)

    async def has_admin(self) -> bool:
        return any(
            t.role == Role.ADMIN and not t.revoked and t.user_id is None
            for t in await self._store.list_tokens()
        )

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthenticated("missing bearer token")
        entry = await self._lookup(secret)
        if entry.principal is None or entry.record is None:
            raise Unauthenticated("invalid or revoked token")
        expires_at = entry.record.expires_at
        if expires_at is not None and expires_at <= time.time():
            raise Unauthenticated("token expired", token_id=entry.record.id)
        await self._touch(entry.record.id)
        return entry.principal

    async def find(self, secret: str) -> TokenView | None:
        """The token behind a secret (for "who am I"), or None when it is unknown."""
        record = await self._store.find_token(tokens.digest(secret))
        return TokenView.of(record) if record is not None else None

    async def _lookup(self, secret: str) -> _Cached:
        key = tokens.digest(secret)
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached.until > now:
            return cached
        record = await self._store.find_token(key)
        principal = None
        if record is not None and not record.revoked:
            principal = await self._principal_of(record)
        if len(self._cache) > 10000:
            self._cache.clear()
        entry = _Cached(record, principal, now + CACHE_SECONDS)
        self._cache[key] = entry
        return entry

    async def _principal_of(self, record: TokenRecord) -> Principal | None:
        """None for an agent token bound to no project (minted before tokens were bound:
        it would otherwise act in every project), and for a personal token whose user is
        disabled or gone."""
        if record.user_id is not None:
            user = await self._store.get_user(record.user_id)
            if user is None or user.disabled:
                return None
            return Principal(id=user.id, name=user.email, role=Role(user.role))
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

    async def _touch(self, token_id: str) -> None:
        """Record the use at most once a minute; a failed write never fails the request."""
        now = time.monotonic()
        last = self._touched.get(token_id)
        if last is not None and now - last < TOUCH_SECONDS:
            return
        if len(self._touched) > 10000:
            self._touched.clear()
        self._touched[token_id] = now
        try:
            await self._store.touch_token(token_id, time.time())
        except CorralError as exc:
            log.warning(
                "could not record a token's last use: %s",
                exc.message,
                extra={"action": "token_touch_failed", "token_id": token_id},
            )

    async def revoke_for_executor(self, executor_id: str) -> None:
        """Revoke a worker's own tokens and drop the cache, so they stop here at once."""
        if await self._store.revoke_executor_tokens(executor_id):
            self._cache.clear()


def _expiry(now: float, expires_in: float | None) -> float | None:
    if expires_in is None:
        return None
    if not 0 < expires_in <= MAX_LIFETIME_SECONDS:
        raise InvalidInput(
            f"expires_in must be between 1 and {MAX_LIFETIME_SECONDS} seconds",
            field="expires_in",
        )
    return now + expires_in


def _log_change(action: str, token_id: str, principal: Principal) -> None:
    log.info(
        "%s %s",
        action.replace("_", " "),
        token_id,
        extra={"action": action, "token_id": token_id, "by": principal.id},
    )
