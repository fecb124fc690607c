"""TaskDriver's agent sessions on PostgreSQL: the session half of ``PostgresStore``."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

from corral.domain.sessions import AgentSession
from corral.errors import AlreadyExists, NotFound
from corral.store.accounts_rows import SESSION_COLUMNS, session_from_row


class PostgresSessions:
    """Single statements on a pooled connection; no row locks are held."""

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def create_session(self, session: AgentSession) -> None:
        """Also forgets sessions that expired before this one began (see the SQLite twin)."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM agent_sessions WHERE expires_at < $1", session.created_at
            )
            try:
                await conn.execute(
                    f"INSERT INTO agent_sessions ({SESSION_COLUMNS}) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    session.id,
                    session.token_hash,
                    session.agent_name,
                    session.project_id,
                    session.created_at,
                    session.expires_at,
                    session.last_activity,
                    int(session.revoked),
                    session.credential_id,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("session already exists", session_id=session.id) from None

    async def find_session(self, token_hash: str) -> AgentSession | None:
        return await self._one_session("token_hash", token_hash)

    async def get_session(self, session_id: str) -> AgentSession | None:
        return await self._one_session("id", session_id)

    async def _one_session(self, column: str, value: str) -> AgentSession | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE {column} = $1", value
            )
        return session_from_row(row) if row else None

    async def touch_session(
        self, session_id: str, last_activity: float, expires_at: float | None = None
    ) -> None:
        async with self._conn() as conn:
            status = await conn.execute(
                "UPDATE agent_sessions SET last_activity = $1, "
                "expires_at = coalesce($2, expires_at) WHERE id = $3",
                last_activity,
                expires_at,
                session_id,
            )
        if status.endswith(" 0"):
            raise NotFound("session not found", session_id=session_id)

    async def revoke_session(self, session_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute("UPDATE agent_sessions SET revoked = 1 WHERE id = $1", session_id)

    async def count_live_sessions(self, now: float) -> int:
        async with self._conn() as conn:
            count = await conn.fetchval(
                "SELECT count(*) FROM agent_sessions WHERE revoked = 0 AND expires_at > $1", now
            )
        return int(count)
