"""Leases on SQLite: claims, renewals, reports, releases, cancels, the reaper's
takeovers, and the output a running attempt appends: the job-lifecycle half of
``SqliteStore``.

Each write is one op of the single writer (``engine.py``), so a claim and a report on
the same job never interleave; the decisions are the domain's, as on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from corral.domain import outcomes
from corral.domain.jobs import AttemptRef, ClaimRequest, Job
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus, check_pending, check_transition
from corral.errors import CorralError
from corral.store.leases_port import OutputSlice, Report
from corral.store.lost import TAKEN_OVER, release_attempt_end, released
from corral.store.rows import JOB_COLUMNS, job_from_row, splice
from corral.store.shared import SET_LEFTOVERS, leftover_rows
from corral.store.sqlite import claim as sqlite_claim
from corral.store.sqlite import ops
from corral.store.sqlite.engine import Readers, Writer
from corral.store.sqlite.finish import finish_reports


class SqliteLeases:
    """Writes through the writer's ops; reads of output from the reader threads."""

    output_cap: int
    _writer: Writer
    _readers: Readers
    _seen: dict[str, float]
    _clock: Callable[[], float]

    async def _write(self, op: Any) -> Any:
        raise NotImplementedError

    def _at(self, now: float | None) -> float:
        raise NotImplementedError

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
