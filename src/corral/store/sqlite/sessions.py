"""TaskDriver's agent sessions on SQLite: the session half of ``SqliteStore``."""

from __future__ import annotations

import sqlite3

from corral.domain.sessions import AgentSession
from corral.errors import AlreadyExists, NotFound
from corral.store.accounts_rows import SESSION_COLUMNS, session_from_row
from corral.store.sqlite.engine import Readers, Writer


class SqliteSessions:
    """One short transaction per write; reads go to the reader threads."""

    _writer: Writer
    _readers: Readers

    async def create_session(self, session: AgentSession) -> None:
        """Also forgets sessions that expired before this one began, so the table stays
        the size of the live sessions rather than of every login ever made."""

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM agent_sessions WHERE expires_at < ?", (session.created_at,))
            try:
                conn.execute(
                    f"INSERT INTO agent_sessions ({SESSION_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.id,
                        session.token_hash,
                        session.agent_name,
                        session.project_id,
                        session.created_at,
                        session.expires_at,
                        session.last_activity,
                        int(session.revoked),
                        session.credential_id,
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("session already exists", session_id=session.id) from None

        await self._writer.submit(op)

    async def find_session(self, token_hash: str) -> AgentSession | None:
        return await self._one_session("token_hash", token_hash)

    async def get_session(self, session_id: str) -> AgentSession | None:
        return await self._one_session("id", session_id)

    async def _one_session(self, column: str, value: str) -> AgentSession | None:
        sql = f"SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE {column} = ?"

        def op(conn: sqlite3.Connection) -> AgentSession | None:
            row = conn.execute(sql, (value,)).fetchone()
            return session_from_row(row) if row else None

        return await self._readers.run(op)

    async def touch_session(
        self, session_id: str, last_activity: float, expires_at: float | None = None
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE agent_sessions SET last_activity = ?, "
                "expires_at = coalesce(?, expires_at) WHERE id = ?",
                (last_activity, expires_at, session_id),
            ).rowcount
            if changed == 0:
                raise NotFound("session not found", session_id=session_id)

        await self._writer.submit(op)

    async def revoke_session(self, session_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE agent_sessions SET revoked = 1 WHERE id = ?", (session_id,))

        await self._writer.submit(op)

    async def count_live_sessions(self, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM agent_sessions WHERE revoked = 0 AND expires_at > ?", (now,)
            ).fetchone()
            return int(row[0])

        return await self._readers.run(op)
