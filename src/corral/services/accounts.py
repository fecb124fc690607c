"""Accounts: users who log in with email and password and then carry a JWT.

A JWT names only the user (``sub``), the session (``jti``) and the user's
session epoch at login. Each request reads the user's current row and the
revocation list, without a cache, so disabling a user, changing a role or
logging out takes effect on the very next request, on every replica. A password
reset or disabling moves the epoch on, which ends every earlier login for good
(re-enabling the user revives none of them). A logout is remembered for as long
as ``refresh`` could still accept the token: its expiry plus the refresh grace.
The signing secret is either configured or made once and kept in the database,
where every replica sharing it finds the same one.

Admins list users, create them and change their role, disabled flag or
password. Every admin answer is a ``UserView``, which has no field for the
password hash, so no face can leak one by rendering a whole record. An admin
may not disable or demote their own account: that is refused as invalid input,
so an admin cannot lock themselves (perhaps the last admin) out by a slip.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from corral.auth import jwt_tokens, password_policy, passwords
from corral.auth.policy import Action, require
from corral.domain.principals import Principal, Role
from corral.errors import (
    AlreadyExists,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    Unauthenticated,
)
from corral.store.accounts_port import UserRecord
from corral.store.base import Store

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


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as answers show it: everything but the password hash."""

    id: str
    email: str
    role: str
    disabled: bool
    created_at: float

    @classmethod
    def of(cls, user: UserRecord) -> UserView:
        return cls(user.id, user.email, user.role, user.disabled, user.created_at)


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
        _check_password(password)
        user = UserRecord(
            id=f"user-{uuid.uuid4().hex}",
            email=email,
            password_hash=await passwords.offload(passwords.hash_password, password),
            role=parsed.value,
            created_at=time.time(),
        )
        await self._store.create_user(user)
        return user

    async def create_user(
        self, principal: Principal, email: str, password: str, role: str
    ) -> UserView:
        require(principal, Action.ADMIN)
        user = await self.mint_user(email, password, role)
        log.info(
            "created user %s",
            user.email,
            extra={"action": "user_created", "user_id": user.id, "by": principal.id},
        )
        return UserView.of(user)

    async def list_users(self, principal: Principal) -> list[UserView]:
        require(principal, Action.ADMIN)
        return [UserView.of(user) for user in await self._store.list_users()]

    async def find_user(self, principal: Principal, email: str) -> UserView:
        """Operators name users by email (the CLI); the API names them by id."""
        require(principal, Action.ADMIN)
        user = await self._store.find_user_by_email(email.strip().lower())
        if user is None:
            raise NotFound(f"no user with email {email!r}", email=email)
        return UserView.of(user)

    async def set_role(self, principal: Principal, user_id: str, role: str) -> UserView:
        return await self.update_user(principal, user_id, role=role)

    async def set_disabled(self, principal: Principal, user_id: str, disabled: bool) -> UserView:
        return await self.update_user(principal, user_id, disabled=disabled)

    async def reset_password(self, principal: Principal, user_id: str, password: str) -> UserView:
        return await self.update_user(principal, user_id, password=password)

    async def update_user(
        self,
        principal: Principal,
        user_id: str,
        *,
        role: str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> UserView:
        """Change any of role, disabled flag and password. Every field is checked before
        the first write, so a request with one bad field changes nothing."""
        require(principal, Action.ADMIN)
        parsed = _user_role(role) if role is not None else None
        if password is not None:
            _check_password(password)
        user = await self._user(user_id)
        if user.id == principal.id:
            _refuse_self_lockout(parsed, disabled)
        if password is not None:
            digest = await passwords.offload(passwords.hash_password, password)
            # The store moves the session epoch on in the same write: every login issued
            # before it (even earlier in this very second) stops at its next request.
            await self._store.set_user_password(user.id, digest)
        if parsed is not None:
            await self._store.set_user_role(user.id, parsed.value)
        if disabled is not None:
            await self._store.set_user_disabled(user.id, disabled)
        named = (("role", role), ("disabled", disabled), ("password", password))
        log.info(
            "changed user %s",
            user.email,
            extra={
                "action": "user_changed",
                "user_id": user.id,
                "by": principal.id,
                "fields": [n for n, v in named if v is not None],  # never a password
            },
        )
        return UserView.of(await self._user(user.id))

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
        matches = await passwords.offload(passwords.verify_password, stored, password)
        if user is None or not matches or user.disabled:
            raise InvalidCredentials("Email or password incorrect")
        return self._issue(user)

    async def logout(self, token: str) -> None:
        claims = await self._valid_claims(token)
        # Kept until refresh would refuse the token anyway: dropped at ``exp``, the record
        # would let a refresh in the grace after ``exp`` bring a logged-out token back.
        await self._store.revoke_jti(claims.jti, claims.exp + REFRESH_GRACE_SECONDS, time.time())

    async def refresh(self, token: str) -> Session:
        """Swap a live or recently expired token for a new one; the old one stops working."""
        claims = await self._valid_claims(token, leeway=REFRESH_GRACE_SECONDS)
        user = await self._active_user(claims)
        await self._store.revoke_jti(claims.jti, claims.exp + REFRESH_GRACE_SECONDS, time.time())
        return self._issue(user)

    async def authenticate(self, token: str) -> Principal:
        claims = await self._valid_claims(token)
        user = await self._active_user(claims)
        return Principal(id=user.id, name=user.email, role=Role(user.role))

    def _issue(self, user: UserRecord) -> Session:
        token, claims = jwt_tokens.issue(self.secret, user.id, time.time(), user.session_epoch)
        return Session(token=token, user=user, expires_at=claims.exp)

    async def _valid_claims(self, token: str, leeway: float = 0.0) -> jwt_tokens.Claims:
        try:
            claims = jwt_tokens.decode(self.secret, token, time.time(), leeway)
        except jwt_tokens.InvalidToken as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        if await self._store.is_revoked(claims.jti):
            raise Unauthenticated("token has been revoked")
        return claims

    async def _user(self, user_id: str) -> UserRecord:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id!r}", user_id=user_id)
        return user

    async def _active_user(self, claims: jwt_tokens.Claims) -> UserRecord:
        user = await self._store.get_user(claims.sub)
        if user is None or user.disabled:
            raise Unauthenticated("user is disabled or no longer exists")
        if claims.epoch < user.session_epoch or claims.iat < user.sessions_after:
            raise Unauthenticated("this login ended (password reset or account disabled)")
        return user


def _user_role(role: str) -> Role:
    """Users are people: workers authenticate with API tokens, never with a password."""
    for parsed in USER_ROLES:
        if parsed.value == role:
            return parsed
    raise InvalidInput(f"unknown user role {role!r}", field="role")


def _normalise_email(email: str) -> str:
    """Not RFC 5322: enough to catch typos, since the address is only a login name."""
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    if not local or not domain or any(c.isspace() for c in email):
        raise InvalidInput("email must look like name@domain", field="email")
    return email


def _check_password(password: str) -> None:
    """The one password rule (auth/password_policy.py), for every face that sets one."""
    reason = password_policy.problem(password)
    if reason is not None:
        raise InvalidInput(reason, field="password")


def _refuse_self_lockout(role: Role | None, disabled: bool | None) -> None:
    """The caller passed ``require(ADMIN)``, so any other role or disabling locks them out."""
    if disabled:
        raise InvalidInput("an admin may not disable their own account", field="disabled")
    if role is not None and role != Role.ADMIN:
        raise InvalidInput("an admin may not change their own role", field="role")
