"""The SQLite adapter: the default store, a file under ``--data-dir``, nothing to install.

Writes go through the single writer thread (see ``sqlite.engine``), which
serialises them; that is what makes a claim exclusive here, where PostgreSQL
needs ``FOR UPDATE SKIP LOCKED``. Each operation below is a plain function of
a connection, run inside the writer's transaction.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from corral.domain import outcomes
from corral.domain.jobs import Attempt, AttemptRef, ClaimRequest, Job, NewJob
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus, check_pending, check_transition
from corral.errors import AlreadyExists, CorralError
from corral.store.base import (
    IdempotencyRecord,
    Inserted,
    JobFilter,
    Listener,
    OutputSlice,
    Report,
    WorkflowRecord,
)
from corral.store.lost import TAKEN_OVER, release_attempt_end, released
from corral.store.rows import (
    JOB_COLUMNS,
    attempt_from_row,
    job_from_row,
    splice,
    status_counts,
)
from corral.store.shared import SET_LEFTOVERS, SharedOperations, leftover_rows
from corral.store.sqlite import claim as sqlite_claim
from corral.store.sqlite import deps, flow, ops, retention
from corral.store.sqlite.counts import SqliteCounts
from corral.store.sqlite.deps import SqliteDependencies
from corral.store.sqlite.engine import DURABLE, Readers, Writer
from corral.store.sqlite.files import SqliteFiles
from corral.store.sqlite.finish import finish_reports
from corral.store.sqlite.fleet import SqliteFleet
from corral.store.sqlite.flow import SqliteFlow
from corral.store.sqlite.idempotency import SqliteIdempotency
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

    # --- leases -------------------------------------------------------------------
    async def claim(self, request: ClaimRequest, now: float | None) -> list[Job]:
        at = self._at(now)
        result: list[Job] = await self._write(
            lambda conn: sqlite_claim.claim(conn, request, at, self._seen)
        )
        return result

    async def renew_lease(
        self, job_id: str, ref: AttemptRef, now: float | None, duration: float | None = None
    ) -> Job:
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> Job:
            job = ops.fenced_job(conn, job_id, ref)
            expires = now + (job.lease_seconds if duration is None else duration)
            conn.execute("UPDATE jobs SET lease_expires_at = ? WHERE seq = ?", (expires, job.seq))
            conn.execute(
                "UPDATE executors SET last_heartbeat = ? WHERE executor_id = ?",
                (now, ref.executor_id),
            )
            return dataclasses.replace(job, lease_expires_at=expires)

        result: Job = await self._write(op)
        return result

    async def renew_executor_leases(
        self,
        executor_id: str,
        held: Sequence[tuple[str, int]],
        now: float | None,
        principal_id: str | None = None,
    ) -> list[Job]:
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> list[Job]:
            conn.execute(
                "UPDATE executors SET last_heartbeat = ? WHERE executor_id = ?", (now, executor_id)
            )
            renewed = []
            for job_id, attempt in held:
                row = conn.execute(
                    "UPDATE jobs SET lease_expires_at = ? + lease_seconds WHERE id = ? "
                    "AND attempt = ? AND executor_id = ? AND status = 'running' "
                    "AND (? IS NULL OR lease_principal_id = ?) "
                    f"RETURNING {JOB_COLUMNS}",
                    (now, job_id, attempt, executor_id, principal_id, principal_id),
                ).fetchone()
                if row is not None:
                    renewed.append(job_from_row(row))
            return renewed

        result: list[Job] = await self._write(op)
        return result

    async def finish_many(
        self, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        cap = self.output_cap
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> list[Job | CorralError]:
            results = finish_reports(conn, reports, now, policy, cap)
            if leftovers := leftover_rows(reports, results):
                conn.executemany(SET_LEFTOVERS.format("?", "?", "?"), leftovers)
            return results

        result: list[Job | CorralError] = await self._write(op)
        return result

    async def release(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> Job:
            job = ops.fenced_job(conn, job_id, ref)
            new = released(job, now)
            conn.execute(
                "UPDATE jobs SET status = ?, releases = releases + 1, lease_expires_at = NULL, "
                "run_after = 0, finished_at = ?, error_message = ? WHERE seq = ?",
                (new.status.value, new.finished_at, new.error_message, job.seq),
            )
            ended, why = release_attempt_end(new)
            ops.end_attempt(conn, job, ended, now, None, why)
            return new

        result: Job = await self._write(op)
        return result

    async def return_unstarted(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        result: Job = await self._write(lambda conn: ops.return_unstarted(conn, job_id, ref))
        return result

    async def cancel(self, job_id: str, now: float, pending_only: bool = False) -> Job:
        def op(conn: sqlite3.Connection) -> Job:
            job = ops.job_or_404(conn, job_id)
            if pending_only:
                check_pending(job.id, job.status)
            if job.status == JobStatus.RUNNING:
                conn.execute("UPDATE jobs SET cancel_requested = 1 WHERE seq = ?", (job.seq,))
                return dataclasses.replace(job, cancel_requested=True)
            check_transition(job.id, job.status, JobStatus.CANCELLED)
            conn.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE seq = ?",
                (now, job.seq),
            )
            return outcomes.cancelled_waiting(job, now)

        result: Job = await self._write(op)
        return result

    async def reap_expired(
        self,
        now: float | None,
        policy: RetryPolicy,
        limit: int,
        spare_longer_than: float | None = None,
    ) -> list[Job]:
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_leases WHERE status = 'running' "
                "AND lease_expires_at < ? AND (? IS NULL OR lease_seconds <= ?) "
                "ORDER BY lease_expires_at LIMIT ?",
                (now, spare_longer_than, spare_longer_than, limit),
            ).fetchall()
            return [job for job in (ops.reap_row(conn, row, now, policy) for row in rows) if job]

        result: list[Job] = await self._write(op)
        return result

    async def expire_executor_leases(
        self, executor_id: str, keep_principal_id: str, now: float | None, policy: RetryPolicy
    ) -> list[Job]:
        now = self._at(now)

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY jobs_running_executor "
                "WHERE status = 'running' AND executor_id = ? "
                "AND lease_principal_id IS NOT ? ORDER BY seq",
                (executor_id, keep_principal_id),
            ).fetchall()
            ended = (ops.reap_row(conn, row, now, policy, TAKEN_OVER) for row in rows)
            return [job for job in ended if job]

        result: list[Job] = await self._write(op)
        return result

    async def next_run_after(self, now: float) -> float | None:
        def op(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(
                "SELECT min(run_after) FROM jobs WHERE status = 'pending' AND run_after > ?",
                (now,),
            ).fetchone()
            return row[0] if row else None

        return await self._readers.run(op)

    # --- output -----------------------------------------------------------------------
    async def append_output(
        self,
        job_id: str,
        ref: AttemptRef,
        stream: str,
        data: bytes,
        *,
        at: int | None = None,
        truncated: bool = False,
    ) -> OutputSlice:
        cap = self.output_cap

        def op(conn: sqlite3.Connection) -> OutputSlice:
            job = ops.fenced_job(conn, job_id, ref)
            state = job.stdout if stream == "stdout" else job.stderr
            fresh = outcomes.unseen(state.size, data, at)
            return ops.append(conn, job, stream, fresh, cap, truncated=truncated)

        result: OutputSlice = await self._write(op)
        return result

    async def read_output(self, job_id: str, stream: str, offset: int, limit: int) -> OutputSlice:
        ops.check_stream(stream)

        def op(conn: sqlite3.Connection) -> OutputSlice:
            job = ops.job_or_404(conn, job_id)
            state = job.stdout if stream == "stdout" else job.stderr
            rows = conn.execute(
                'SELECT "offset", data FROM job_output WHERE job_id = ? AND attempt = ? '
                'AND stream = ? AND "offset" + length(data) > ? AND "offset" < ? '
                'ORDER BY "offset"',
                (job_id, job.attempt, stream, offset, offset + limit),
            ).fetchall()
            data = splice(rows, offset, limit)
            return OutputSlice(data, offset, state.size, state.truncated, job.attempt)

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
