"""Executors and API tokens on PostgreSQL: the fleet half of ``PostgresStore``."""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg

from corral.domain.workers import Executor, ExecutorInfo
from corral.errors import AlreadyExists, NotFound
from corral.store.fleet_port import TokenRecord
from corral.store.fleet_rows import (
    executor_from_row,
    executor_params,
    executor_placement_params,
    token_from_row,
)
from corral.store.postgres import sql as q
from corral.store.postgres.users import END_AGENT_SESSIONS


class PostgresFleet:
    """Single statements on a pooled connection; the executor row is the only one locked."""

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def _execute(self, sql: str, *args: Any) -> str:
        raise NotImplementedError

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError

    # --- executors ----------------------------------------------------------------------
    async def upsert_executor(self, info: ExecutorInfo, now: float, draining: bool) -> Executor:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                q.UPSERT_EXECUTOR,
                *executor_params(info),
                now,
                int(draining),
                *executor_placement_params(info),
            )
        return executor_from_row(row)

    async def register_executor(
        self, info: ExecutorInfo, now: float, live_after: float
    ) -> Executor:
        row = await self._fetchrow(
            q.REGISTER_EXECUTOR,
            *executor_params(info),
            now,
            live_after,
            *executor_placement_params(info),
        )
        if row is None:
            raise AlreadyExists("Worker already registered", worker_id=info.executor_id)
        return executor_from_row(row)

    async def touch_executor(
        self, executor_id: str, now: float, reported_status: str | None = None
    ) -> None:
        await self._execute(q.TOUCH_EXECUTOR, now, executor_id, reported_status)

    async def get_executor(self, executor_id: str) -> Executor | None:
        row = await self._fetchrow("SELECT * FROM executors WHERE executor_id = $1", executor_id)
        return executor_from_row(row) if row else None

    async def list_executors(self) -> list[Executor]:
        rows = await self._fetch("SELECT * FROM executors ORDER BY executor_id")
        return [executor_from_row(r) for r in rows]

    async def delete_executor(self, executor_id: str) -> None:
        status = await self._execute("DELETE FROM executors WHERE executor_id = $1", executor_id)
        if status == "DELETE 0":
            raise NotFound("executor not found", executor_id=executor_id)

    # --- tokens -----------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> None:
        async with self._conn() as conn:
            try:
                await conn.execute(
                    q.INSERT_TOKEN,
                    token.id,
                    token.name,
                    token.role,
                    token.token_hash,
                    token.created_at,
                    int(token.revoked),
                    token.executor_id,
                    token.project_id,
                    token.expires_at,
                    token.user_id,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("token already exists", token_id=token.id) from None

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        row = await self._fetchrow("SELECT * FROM api_tokens WHERE token_hash = $1", token_hash)
        return token_from_row(row) if row else None

    async def list_tokens(self) -> list[TokenRecord]:
        rows = await self._fetch("SELECT * FROM api_tokens ORDER BY created_at")
        return [token_from_row(r) for r in rows]

    async def revoke_token(self, token_id: str) -> None:
        status = await self._execute("UPDATE api_tokens SET revoked = 1 WHERE id = $1", token_id)
        if status == "UPDATE 0":
            raise NotFound("token not found", token_id=token_id)
        await self._execute(END_AGENT_SESSIONS, token_id)  # the sessions it opened end too

    async def revoke_executor_tokens(self, executor_id: str) -> int:
        status = await self._execute(
            "UPDATE api_tokens SET revoked = 1 WHERE executor_id = $1 AND revoked = 0",
            executor_id,
        )
        return int(status.split()[-1])

    async def touch_token(self, token_id: str, now: float) -> None:
        await self._execute(
            "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 "
            "AND (last_used_at IS NULL OR last_used_at < $2)",
            token_id,
            now,
        )
