"""The accounts half of the storage port (``Store`` extends it): users, revoked
logins, shared secrets, and TaskDriver's agent sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.domain.sessions import AgentSession


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An account that logs in with a password; ``email`` is stored lower-cased."""

    id: str
    email: str
    password_hash: str
    role: str
    created_at: float
    disabled: bool = False
    sessions_after: float = 0.0  # logins issued earlier than this no longer count
    session_epoch: int = 0  # logins carrying an earlier epoch no longer count


class AccountStore(Protocol):
    """What the account, login and session services need of a store."""

    # --- users, revoked JWTs, shared secrets ---------------------------------------
    async def create_user(self, user: UserRecord) -> None:
        """Raises ``AlreadyExists`` when the email (or id) is taken."""

    async def count_users(self) -> int: ...

    async def list_users(self) -> list[UserRecord]:
        """Every user, oldest first."""

    async def find_user_by_email(self, email: str) -> UserRecord | None: ...

    async def get_user(self, user_id: str) -> UserRecord | None: ...

    async def set_user_role(self, user_id: str, role: str) -> None:
        """Raises ``NotFound`` for an unknown user."""

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling moves ``session_epoch`` on (enabling does not move it back) and ends
        the agent sessions the user opened.

        Raises ``NotFound`` for an unknown user."""

    async def set_user_password(
        self, user_id: str, password_hash: str, sessions_after: float = 0.0
    ) -> None:
        """Replace the hash and move ``session_epoch`` on (ending every earlier login, and
        the agent sessions the user opened);
        ``sessions_after`` is kept for logins issued before epochs existed.

        Raises ``NotFound`` for an unknown user."""

    async def revoke_jti(self, jti: str, expires_at: float, now: float) -> None:
        """Remember a logged-out token until ``expires_at``; forget ones expired by ``now``."""

    async def is_revoked(self, jti: str) -> bool: ...

    async def get_meta(self, key: str) -> str | None: ...

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        """Store ``value`` unless the key exists; return the stored value either way,
        so replicas racing to set a shared secret all end up with the same one."""

    # --- TaskDriver: agent sessions ---------------------------------------------------------
    async def create_session(self, session: AgentSession) -> None: ...

    async def find_session(self, token_hash: str) -> AgentSession | None: ...

    async def get_session(self, session_id: str) -> AgentSession | None: ...

    async def touch_session(
        self, session_id: str, last_activity: float, expires_at: float | None = None
    ) -> None:
        """Record activity, and move the expiry when given."""

    async def revoke_session(self, session_id: str) -> None: ...

    async def count_live_sessions(self, now: float) -> int: ...
