"""Users, revoked JWTs and shared secrets on PostgreSQL: the account half of ``PostgresStore``."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

from corral.errors import AlreadyExists, NotFound
from corral.store.accounts_port import UserRecord
from corral.store.accounts_rows import user_from_row

# Insert-if-absent and read back in one round trip. When a racer inserted the
# key after this statement's snapshot was taken, ON CONFLICT waits for it and
# does nothing, yet the fallback SELECT cannot see its row: that one case returns
# no row, and ``put_meta_if_absent`` reads again in a fresh statement.
_PUT_META = """
WITH ins AS (
    INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value
)
SELECT value FROM ins UNION ALL SELECT value FROM meta WHERE key = $1
"""


# Agent sessions opened with a credential that no longer stands end with it.
END_AGENT_SESSIONS = (
    "UPDATE agent_sessions SET revoked = 1 WHERE credential_id = $1 AND revoked = 0"
)


class PostgresUsers:
    """Single statements on a pooled connection; no row locks are held."""

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def create_user(self, user: UserRecord) -> None:
        async with self._conn() as conn:
            try:
                await conn.execute(
                    "INSERT INTO users (id, email, password_hash, role, disabled, created_at) "
                    "VALUES ($1, $2, $3, $4, $5, $6)",
                    user.id,
                    user.email,
                    user.password_hash,
                    user.role,
                    int(user.disabled),
                    user.created_at,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("user already exists", email=user.email) from None

    async def count_users(self) -> int:
        async with self._conn() as conn:
            return int(await conn.fetchval("SELECT count(*) FROM users"))

    async def list_users(self) -> list[UserRecord]:
        async with self._conn() as conn:
            rows = await conn.fetch("SELECT * FROM users ORDER BY created_at, id")
        return [user_from_row(r) for r in rows]

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        return await self._one_user("SELECT * FROM users WHERE email = $1", email)

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._one_user("SELECT * FROM users WHERE id = $1", user_id)

    async def _one_user(self, sql: str, value: str) -> UserRecord | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(sql, value)
        return user_from_row(row) if row else None

    async def set_user_role(self, user_id: str, role: str) -> None:
        await self._update_user("UPDATE users SET role = $1 WHERE id = $2", role, user_id)

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling also moves the session epoch on (re-enabling revives no earlier
        login) and ends the agent sessions the user opened."""
        sql = (
            "UPDATE users SET disabled = $1, "
            "session_epoch = session_epoch + (CASE WHEN $1 = 1 THEN 1 ELSE 0 END) WHERE id = $2"
        )
        async with self._conn() as conn, conn.transaction():
            status: str = await conn.execute(sql, int(disabled), user_id)
            if status == "UPDATE 0":
                raise NotFound("user not found", user_id=user_id)
            if disabled:
                await conn.execute(END_AGENT_SESSIONS, user_id)

    async def set_user_password(
        self, user_id: str, password_hash: str, sessions_after: float = 0.0
    ) -> None:
        sql = (
            "UPDATE users SET password_hash = $1, "
            "sessions_after = greatest(sessions_after, $2), session_epoch = session_epoch + 1 "
            "WHERE id = $3"
        )
        async with self._conn() as conn, conn.transaction():
            status: str = await conn.execute(sql, password_hash, sessions_after, user_id)
            if status == "UPDATE 0":
                raise NotFound("user not found", user_id=user_id)
            await conn.execute(END_AGENT_SESSIONS, user_id)

    async def _update_user(self, sql: str, value: object, user_id: str) -> None:
        async with self._conn() as conn:
            status: str = await conn.execute(sql, value, user_id)
        if status == "UPDATE 0":
            raise NotFound("user not found", user_id=user_id)

    async def revoke_jti(self, jti: str, expires_at: float, now: float) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM revoked_tokens WHERE expires_at < $1", now)
            await conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) "
                "ON CONFLICT (jti) DO NOTHING",
                jti,
                expires_at,
            )

    async def is_revoked(self, jti: str) -> bool:
        async with self._conn() as conn:
            found = await conn.fetchval("SELECT 1 FROM revoked_tokens WHERE jti = $1", jti)
        return found is not None

    async def get_meta(self, key: str) -> str | None:
        async with self._conn() as conn:
            value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return None if value is None else str(value)

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        async with self._conn() as conn:
            stored = await conn.fetchval(_PUT_META, key, value)
            if stored is None:
                stored = await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)
        return str(stored)
