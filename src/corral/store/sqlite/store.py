"""The SQLite adapter: the default store, a file under ``--data-dir``, nothing to install.

Writes go through the single writer thread (see ``sqlite.engine``), which
serialises them; that is what makes a claim exclusive here, where PostgreSQL
needs ``FOR UPDATE SKIP LOCKED``. Each operation below is a plain function of
a connection, run inside the writer's transaction.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from corral.domain.jobs import Attempt, ClaimRequest, Job, NewJob
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists
from corral.store.base import IdempotencyRecord, Inserted, JobFilter, Listener, WorkflowRecord
from corral.store.rows import (
    JOB_COLUMNS,
    attempt_from_row,
    job_from_row,
    status_counts,
)
from corral.store.shared import SharedOperations
from corral.store.sqlite import claim as sqlite_claim
from corral.store.sqlite import deps, flow, ops, retention
from corral.store.sqlite.counts import SqliteCounts
from corral.store.sqlite.deps import SqliteDependencies
from corral.store.sqlite.engine import DURABLE, Readers, Writer
from corral.store.sqlite.files import SqliteFiles
from corral.store.sqlite.fleet import SqliteFleet
from corral.store.sqlite.flow import SqliteFlow
from corral.store.sqlite.idempotency import SqliteIdempotency
from corral.store.sqlite.leases import SqliteLeases
from corral.store.sqlite.pages import SqlitePages
from corral.store.sqlite.projects import SqliteProjects
from corral.store.sqlite.retention import SqliteRetention
from corral.store.sqlite.schedules import SqliteSchedules
from corral.store.sqlite.sessions import SqliteSessions
from corral.store.sqlite.users import SqliteUsers

_INSERT_JOB = (
    f"INSERT INTO jobs ({', '.join(flow.INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in flow.INSERT_COLUMNS)})"
)


class SqliteStore(
    SqliteCounts,
    SqliteFlow,
    SqliteDependencies,
    SqliteFiles,
    SqliteUsers,
    SqliteSessions,
    SqliteFleet,
    SqliteIdempotency,
    SqliteProjects,
    SqlitePages,
    SqliteSchedules,
    SqliteRetention,
    SqliteLeases,
    SharedOperations,
):
    """``Store`` on one SQLite file in WAL mode; files live in ``sqlite.files``, accounts
    in ``sqlite.users``."""

    backend = "sqlite"

    def __init__(
        self,
        path: Path,
        *,
        output_cap: int = 1 << 20,
        synchronous: str = DURABLE,
        clock: Callable[[], float] = time.time,
    ):
        self.path = path
        self.output_cap = output_cap
        self._clock = clock  # one process owns the file, so its clock is the store's
        self._writer = Writer(path, synchronous)
        self._readers = Readers(path, synchronous=synchronous)
        self._seen: dict[str, float] = {}  # executor id -> when a claim last recorded it

    # --- lifecycle ------------------------------------------------------------
    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if fresh:
            retention.create_incremental(self.path)
        ops.migrate(self.path)
        if not fresh:
            retention.convert_small(self.path)
        self._writer.start()

    async def close(self) -> None:
        await self._writer.flush()  # every acknowledged write committed before closing
        self._writer.stop()
        self._readers.close()

    async def ping(self) -> None:
        await self._readers.run(lambda c: c.execute("SELECT 1").fetchone())

    async def database_size(self) -> int:
        """Pages in use times page size: the file's size without the WAL's transient bytes."""

        def op(conn: sqlite3.Connection) -> int:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            return int(pages) * int(size)

        return await self._readers.run(op)

    def add_listener(self, listener: Listener) -> None:
        """One process owns a SQLite file, so there is nobody else to hear from."""

    async def announce(self, topic: str) -> None:
        """Nothing to do: waiters in this process are woken by the services directly."""

    async def _write(self, op: Any) -> Any:
        return await self._writer.submit(op)

    async def clock(self) -> float:
        return self._clock()

    def _at(self, now: float | None) -> float:
        return self._clock() if now is None else now

    # --- jobs -------------------------------------------------------------------
    async def insert_and_claim(
        self,
        jobs: Sequence[NewJob],
        claims: Sequence[ClaimRequest],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> Inserted:
        now = self._clock()

        def op(conn: sqlite3.Connection) -> Inserted:
            stored = _insert(conn, jobs, idempotency, workflow, now)
            claimed = [sqlite_claim.claim(conn, request, now, self._seen) for request in claims]
            return Inserted(stored, claimed)

        result: Inserted = await self._write(op)
        return result

    async def find_idempotency(self, principal_id: str, key: str) -> IdempotencyRecord | None:
        def op(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            row = conn.execute(
                "SELECT request_hash, status_code, body FROM idempotency_keys "
                "WHERE principal_id = ? AND key = ?",
                (principal_id, key),
            ).fetchone()
            if row is None:
                return None
            return IdempotencyRecord(principal_id, key, row[0], row[1], bytes(row[2]))

        return await self._readers.run(op)

    async def get_job(self, job_id: str) -> Job | None:
        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(ops.SELECT_JOB, (job_id,)).fetchone()
            return job_from_row(row) if row else None

        return await self._readers.run(op)

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        def op(conn: sqlite3.Connection) -> list[Job]:
            marks = ",".join("?" for _ in job_ids)
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", tuple(job_ids)
            ).fetchall()
            return [job_from_row(r) for r in rows]

        return await self._readers.run(op) if job_ids else []

    async def get_attempts(self, job_id: str) -> list[Attempt]:
        def op(conn: sqlite3.Connection) -> list[Attempt]:
            rows = conn.execute(
                "SELECT * FROM attempts WHERE job_id = ? ORDER BY number", (job_id,)
            ).fetchall()
            return [attempt_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def list_jobs(
        self, flt: JobFilter, limit: int, offset: int, newest_first: bool = True
    ) -> tuple[list[Job], int]:
        where, params = ops.filter_sql(flt)
        order = "DESC" if newest_first else "ASC"

        def op(conn: sqlite3.Connection) -> tuple[list[Job], int]:
            total = conn.execute(f"SELECT count(*) FROM jobs {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY seq {order} LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [job_from_row(r) for r in rows], total

        return await self._readers.run(op)

    async def count_by_status(self) -> dict[JobStatus, int]:
        def op(conn: sqlite3.Connection) -> dict[JobStatus, int]:
            rows = conn.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
            return status_counts(rows)

        return await self._readers.run(op)

    async def pending_by_priority(self) -> dict[int, int]:
        def op(conn: sqlite3.Connection) -> dict[int, int]:
            rows = conn.execute(
                "SELECT priority, count(*) FROM jobs WHERE status = 'pending' GROUP BY priority"
            ).fetchall()
            return {r[0]: r[1] for r in rows}

        return await self._readers.run(op)


def _insert(
    conn: sqlite3.Connection,
    jobs: Sequence[NewJob],
    idempotency: IdempotencyRecord | None,
    workflow: WorkflowRecord | None,
    now: float,
) -> list[Job]:
    """``insert_jobs`` inside the writer's transaction: the jobs as they read back."""
    if idempotency is not None:
        ops.insert_idempotency(conn, idempotency, jobs[0].id if jobs else None)
    if workflow is not None:
        deps.insert_workflow_row(conn, workflow)
    try:
        conn.executemany(_INSERT_JOB, flow.insert_params(conn, jobs, now))
    except sqlite3.IntegrityError as exc:
        if "dedupe_key" in str(exc):
            raise AlreadyExists("an identical task already exists", duplicate=True) from None
        raise AlreadyExists("job id already exists") from None
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    first = last - len(jobs) + 1  # one writer, so the sequence is contiguous
    stored = [job.stored(first + i) for i, job in enumerate(jobs)]
    settled = deps.link(conn, jobs, now) | flow.admit_new(conn, jobs)
    if not settled:
        return stored
    fresh = deps.reread(conn, settled)
    return [fresh.get(j.id, j) for j in stored]
