"""Accounts: users who log in with email and password and then carry a JWT.

A JWT names only the user (``sub``) and the session (``jti``). Each request
reads the user's current row and the revocation list, without a cache, so
disabling a user, changing a role or logging out takes effect on the very next
request, on every replica. The signing secret is either configured or made once
and kept in the database, where every replica sharing it finds the same one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

from corral.auth import jwt_tokens, passwords
from corral.auth.policy import Action, require
from corral.domain.principals import Principal, Role
from corral.errors import AlreadyExists, InvalidCredentials, InvalidInput, Unauthenticated
from corral.store.base import Store, UserRecord

log = logging.getLogger("corral.services.accounts")
SECRET_KEY = "jwt_secret"
USER_ROLES = frozenset({Role.ADMIN, Role.SUBMITTER, Role.VIEWER})
# CMD Executor's refresh takes an *expired* token; this is how long after expiry it still may.
REFRESH_GRACE_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Session:
    """A freshly issued login: the JWT and whom it speaks for."""

    token: str
    user: UserRecord
    expires_at: float


class AccountService:
    def __init__(self, store: Store, configured_secret: str | None = None) -> None:
        self._store = store
        self._secret = configured_secret.encode() if configured_secret else None

    async def start(self) -> None:
        """Load the shared signing secret, making it on the first start of the first replica."""
        if self._secret is None:
            stored = await self._store.put_meta_if_absent(SECRET_KEY, jwt_tokens.new_secret())
            self._secret = bytes.fromhex(stored)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            raise RuntimeError("AccountService.start() has not run")
        return self._secret

    async def mint_user(self, email: str, password: str, role: str) -> UserRecord:
        """Create a user without a caller to check; for the CLI and the first start."""
        parsed = _user_role(role)
        email = _normalise_email(email)
        if not password:
            raise InvalidInput("password must not be empty", field="password")
        user = UserRecord(
            id=f"user-{uuid.uuid4().hex}",
            email=email,
            password_hash=await asyncio.to_thread(passwords.hash_password, password),
            role=parsed.value,
            created_at=time.time(),
        )
        await self._store.create_user(user)
        return user

    async def create_user(
        self, principal: Principal, email: str, password: str, role: str
    ) -> UserRecord:
        require(principal, Action.ADMIN)
        return await self.mint_user(email, password, role)

    async def bootstrap_admin(self, email: str | None, password: str | None) -> None:
        """Create the configured admin when no user exists yet; racing replicas make one."""
        if not email or not password or await self._store.count_users():
            return
        try:
            await self.mint_user(email, password, Role.ADMIN.value)
        except AlreadyExists:
            return
        log.warning("created the first admin user %s", email, extra={"action": "admin_created"})

    async def login(self, email: str, password: str) -> Session:
        user = await self._store.find_user_by_email(email.strip().lower())
        # Hash verification runs even for unknown emails, so timing does not reveal them.
        stored = user.password_hash if user is not None else None
        matches = await asyncio.to_thread(passwords.verify_password, stored, password)
        if user is None or not matches or user.disabled:
            raise InvalidCredentials("Email or password incorrect")
        return self._issue(user)

    async def logout(self, token: str) -> None:
        claims = await self._valid_claims(token)
        await self._store.revoke_jti(claims.jti, claims.exp, time.time())

    async def refresh(self, token: str) -> Session:
        """Swap a live or recently expired token for a new one; the old one stops working."""
        claims = await self._valid_claims(token, leeway=REFRESH_GRACE_SECONDS)
        user = await self._active_user(claims.sub)
        await self._store.revoke_jti(claims.jti, claims.exp + REFRESH_GRACE_SECONDS, time.time())
        return self._issue(user)

    async def authenticate(self, token: str) -> Principal:
        claims = await self._valid_claims(token)
        user = await self._active_user(claims.sub)
        return Principal(id=user.id, name=user.email, role=Role(user.role))

    def _issue(self, user: UserRecord) -> Session:
        token, claims = jwt_tokens.issue(self.secret, user.id, time.time())
        return Session(token=token, user=user, expires_at=claims.exp)

    async def _valid_claims(self, token: str, leeway: float = 0.0) -> jwt_tokens.Claims:
        try:
            claims = jwt_tokens.decode(self.secret, token, time.time(), leeway)
        except jwt_tokens.InvalidToken as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        if await self._store.is_revoked(claims.jti):
            raise Unauthenticated("token has been revoked")
        return claims

    async def _active_user(self, user_id: str) -> UserRecord:
        user = await self._store.get_user(user_id)
        if user is None or user.disabled:
            raise Unauthenticated("user is disabled or no longer exists")
        return user


def _user_role(role: str) -> Role:
    """Users are people: workers authenticate with API tokens, never with a password."""
    for parsed in USER_ROLES:
        if parsed.value == role:
            return parsed
    raise InvalidInput(f"unknown user role {role!r}", field="role")


def _normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email:
        raise InvalidInput("email must contain '@'", field="email")
    return email
