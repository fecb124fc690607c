"""Users, revoked JWTs and shared secrets on SQLite: the account half of ``SqliteStore``."""

from __future__ import annotations

import sqlite3

from corral.errors import AlreadyExists, NotFound
from corral.store.accounts_port import UserRecord
from corral.store.accounts_rows import user_from_row
from corral.store.sqlite.engine import Readers, Writer

# Agent sessions opened with a credential that no longer stands (a revoked token, a
# disabled user, a reset password) end with it.
END_AGENT_SESSIONS = "UPDATE agent_sessions SET revoked = 1 WHERE credential_id = ? AND revoked = 0"


class SqliteUsers:
    """Each write is one short transaction on the single writer."""

    _writer: Writer
    _readers: Readers

    async def create_user(self, user: UserRecord) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO users (id, email, password_hash, role, disabled, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        user.id,
                        user.email,
                        user.password_hash,
                        user.role,
                        int(user.disabled),
                        user.created_at,
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("user already exists", email=user.email) from None

        await self._writer.submit(op)

    async def count_users(self) -> int:
        return await self._readers.run(
            lambda c: int(c.execute("SELECT count(*) FROM users").fetchone()[0])
        )

    async def list_users(self) -> list[UserRecord]:
        def op(conn: sqlite3.Connection) -> list[UserRecord]:
            rows = conn.execute("SELECT * FROM users ORDER BY created_at, id").fetchall()
            return [user_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def find_user_by_email(self, email: str) -> UserRecord | None:
        return await self._one_user("SELECT * FROM users WHERE email = ?", email)

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._one_user("SELECT * FROM users WHERE id = ?", user_id)

    async def _one_user(self, sql: str, value: str) -> UserRecord | None:
        def op(conn: sqlite3.Connection) -> UserRecord | None:
            row = conn.execute(sql, (value,)).fetchone()
            return user_from_row(row) if row else None

        return await self._readers.run(op)

    async def set_user_role(self, user_id: str, role: str) -> None:
        await self._update_user("UPDATE users SET role = ? WHERE id = ?", role, user_id)

    async def set_user_disabled(self, user_id: str, disabled: bool) -> None:
        """Disabling also moves the session epoch on (re-enabling revives no earlier
        login) and ends the agent sessions the user opened."""
        flag = int(disabled)
        sql = f"UPDATE users SET disabled = ?, session_epoch = session_epoch + {flag} WHERE id = ?"

        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, (flag, user_id)).rowcount == 0:
                raise NotFound("user not found", user_id=user_id)
            if disabled:
                conn.execute(END_AGENT_SESSIONS, (user_id,))

        await self._writer.submit(op)

    async def set_user_password(
        self, user_id: str, password_hash: str, sessions_after: float = 0.0
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            sql = (
                "UPDATE users SET password_hash = ?, "
                "sessions_after = max(sessions_after, ?), session_epoch = session_epoch + 1 "
                "WHERE id = ?"
            )
            if conn.execute(sql, (password_hash, sessions_after, user_id)).rowcount == 0:
                raise NotFound("user not found", user_id=user_id)
            conn.execute(END_AGENT_SESSIONS, (user_id,))

        await self._writer.submit(op)

    async def _update_user(self, sql: str, value: object, user_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, (value, user_id)).rowcount == 0:
                raise NotFound("user not found", user_id=user_id)

        await self._writer.submit(op)

    async def revoke_jti(self, jti: str, expires_at: float, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM revoked_tokens WHERE expires_at < ?", (now,))
            conn.execute(
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) "
                "ON CONFLICT (jti) DO NOTHING",
                (jti, expires_at),
            )

        await self._writer.submit(op)

    async def is_revoked(self, jti: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (jti,)).fetchone()
            return row is not None

        return await self._readers.run(op)

    async def get_meta(self, key: str) -> str | None:
        def op(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._readers.run(op)

    async def put_meta_if_absent(self, key: str, value: str) -> str:
        def op(conn: sqlite3.Connection) -> str:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, value),
            )
            return str(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

        stored: str = await self._writer.submit(op)
        return stored
