"""Executors and API tokens on SQLite: the fleet half of ``SqliteStore``."""

from __future__ import annotations

import sqlite3

from corral.domain.workers import Executor, ExecutorInfo
from corral.errors import AlreadyExists, NotFound
from corral.store.fleet_port import TokenRecord
from corral.store.fleet_rows import (
    executor_from_row,
    executor_params,
    executor_placement_params,
    token_from_row,
)
from corral.store.sqlite.engine import Readers, Writer
from corral.store.sqlite.users import END_AGENT_SESSIONS


class SqliteFleet:
    """Each write is one short transaction on the single writer."""

    _writer: Writer
    _readers: Readers

    # --- executors ----------------------------------------------------------------------
    async def upsert_executor(self, info: ExecutorInfo, now: float, draining: bool) -> Executor:
        def op(conn: sqlite3.Connection) -> Executor:
            row = conn.execute(
                "INSERT INTO executors (executor_id, principal_id, hostname, ip, cpu_count, "
                "memory_mb, os, labels, concurrency, metadata, registered_at, last_heartbeat, "
                "draining, cpus, isolation, network_control) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (executor_id) DO UPDATE SET principal_id = excluded.principal_id, "
                "cpus = excluded.cpus, isolation = excluded.isolation, "
                "network_control = excluded.network_control, "
                "hostname = excluded.hostname, ip = coalesce(excluded.ip, executors.ip), "
                "cpu_count = excluded.cpu_count, memory_mb = excluded.memory_mb, "
                "os = excluded.os, labels = excluded.labels, concurrency = excluded.concurrency, "
                "metadata = excluded.metadata, last_heartbeat = excluded.last_heartbeat, "
                "draining = excluded.draining, registered = 1 RETURNING *",
                (
                    *executor_params(info),
                    now,
                    now,
                    int(draining),
                    *executor_placement_params(info),
                ),
            ).fetchone()
            return executor_from_row(row)

        result: Executor = await self._writer.submit(op)
        return result

    async def register_executor(
        self, info: ExecutorInfo, now: float, live_after: float
    ) -> Executor:
        def op(conn: sqlite3.Connection) -> Executor:
            row = conn.execute(
                "INSERT INTO executors (executor_id, principal_id, hostname, ip, cpu_count, "
                "memory_mb, os, labels, concurrency, metadata, registered_at, last_heartbeat, "
                "draining, cpus, isolation, network_control) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
                "ON CONFLICT (executor_id) DO UPDATE SET principal_id = excluded.principal_id, "
                "cpus = excluded.cpus, isolation = excluded.isolation, "
                "network_control = excluded.network_control, "
                "hostname = excluded.hostname, ip = excluded.ip, cpu_count = excluded.cpu_count, "
                "memory_mb = excluded.memory_mb, os = excluded.os, labels = excluded.labels, "
                "concurrency = excluded.concurrency, metadata = excluded.metadata, "
                "registered_at = excluded.registered_at, "
                "last_heartbeat = excluded.last_heartbeat, draining = 0, jobs_completed = 0, "
                "reported_status = NULL, registered = 1 WHERE executors.last_heartbeat < ? "
                "OR (NOT executors.registered AND executors.principal_id = excluded.principal_id) "
                "RETURNING *",
                (
                    *executor_params(info),
                    now,
                    now,
                    *executor_placement_params(info),
                    live_after,
                ),
            ).fetchone()
            if row is None:
                raise AlreadyExists("Worker already registered", worker_id=info.executor_id)
            return executor_from_row(row)

        result: Executor = await self._writer.submit(op)
        return result

    async def touch_executor(
        self, executor_id: str, now: float, reported_status: str | None = None
    ) -> None:
        await self._writer.submit(
            lambda c: c.execute(
                "UPDATE executors SET last_heartbeat = ?, "
                "reported_status = coalesce(?, reported_status) WHERE executor_id = ?",
                (now, reported_status, executor_id),
            )
        )

    async def get_executor(self, executor_id: str) -> Executor | None:
        def op(conn: sqlite3.Connection) -> Executor | None:
            row = conn.execute(
                "SELECT * FROM executors WHERE executor_id = ?", (executor_id,)
            ).fetchone()
            return executor_from_row(row) if row else None

        return await self._readers.run(op)

    async def list_executors(self) -> list[Executor]:
        def op(conn: sqlite3.Connection) -> list[Executor]:
            rows = conn.execute("SELECT * FROM executors ORDER BY executor_id").fetchall()
            return [executor_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def delete_executor(self, executor_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute("DELETE FROM executors WHERE executor_id = ?", (executor_id,))
            if cur.rowcount == 0:
                raise NotFound("executor not found", executor_id=executor_id)

        await self._writer.submit(op)

    # --- tokens -----------------------------------------------------------------------
    async def create_token(self, token: TokenRecord) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked, "
                    "executor_id, project_id, expires_at, user_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
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
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("token already exists", token_id=token.id) from None

        await self._writer.submit(op)

    async def find_token(self, token_hash: str) -> TokenRecord | None:
        def op(conn: sqlite3.Connection) -> TokenRecord | None:
            row = conn.execute(
                "SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            return token_from_row(row) if row else None

        return await self._readers.run(op)

    async def list_tokens(self) -> list[TokenRecord]:
        def op(conn: sqlite3.Connection) -> list[TokenRecord]:
            rows = conn.execute("SELECT * FROM api_tokens ORDER BY created_at").fetchall()
            return [token_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def revoke_token(self, token_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            cur = conn.execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (token_id,))
            if cur.rowcount == 0:
                raise NotFound("token not found", token_id=token_id)
            conn.execute(END_AGENT_SESSIONS, (token_id,))  # the sessions it opened end too

        await self._writer.submit(op)

    async def revoke_executor_tokens(self, executor_id: str) -> int:
        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked = 1 WHERE executor_id = ? AND revoked = 0",
                (executor_id,),
            )
            return cur.rowcount

        count: int = await self._writer.submit(op)
        return count

    async def touch_token(self, token_id: str, now: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE api_tokens SET last_used_at = ? WHERE id = ? "
                "AND (last_used_at IS NULL OR last_used_at < ?)",
                (now, token_id, now),
            )

        await self._writer.submit(op)
