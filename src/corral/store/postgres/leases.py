"""Leases on PostgreSQL: claims, renewals, reports, releases, cancels, the reaper's
takeovers, and the output a running attempt appends: the job-lifecycle half of
``PostgresStore``.

Whatever ends jobs runs through ``_in_tx``, which runs a transaction again when
PostgreSQL rolled it back to break a lock cycle (``retry.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from corral.domain import outcomes
from corral.domain.jobs import AttemptRef, ClaimRequest, Job
from corral.domain.leases import (
    LATE_RELEASE,
    check_fence,
    check_late_release,
    returned_unstarted,
)
from corral.domain.retry import RetryPolicy
from corral.domain.states import AttemptStatus, JobStatus, check_pending, check_transition
from corral.errors import CorralError, NotFound
from corral.store import lost
from corral.store.leases_port import OutputSlice, Report
from corral.store.postgres import flow, retry
from corral.store.postgres import sql as q
from corral.store.postgres.claim import claim_args, claim_in
from corral.store.postgres.finish import finish_plain
from corral.store.rows import job_from_row, splice
from corral.store.shared import SET_LEFTOVERS, is_plain, leftover_rows

T = TypeVar("T")


class PostgresLeases:
    """Every fenced write locks its job row first (``FOR UPDATE``), then the executor's."""

    output_cap: int

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def _in_tx(self, work: retry.Work[T], *, one_statement: bool = False) -> T:
        raise NotImplementedError

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError

    async def clock(self) -> float:
        return float(await self._fetchval(q.DB_NOW))

    async def claim(self, request: ClaimRequest, now: float | None) -> list[Job]:
        async with self._conn() as conn:
            return await claim_in(conn, claim_args(request, now))

    async def renew_lease(
        self, job_id: str, ref: AttemptRef, now: float | None, duration: float | None = None
    ) -> Job:
        async with self._tx() as conn:
            job = await q.fenced_job(conn, job_id, ref)
            expires = await conn.fetchval(q.RENEW_ONE, now, job.seq, duration, ref.executor_id)
        return dataclasses.replace(job, lease_expires_at=float(expires))

    async def renew_executor_leases(
        self,
        executor_id: str,
        held: Sequence[tuple[str, int]],
        now: float | None,
        principal_id: str | None = None,
    ) -> list[Job]:
        ids = [job_id for job_id, _ in held]
        attempts = [attempt for _, attempt in held]
        async with self._tx() as conn:
            rows = (
                await conn.fetch(q.RENEW_MANY, executor_id, ids, attempts, now, principal_id)
                if held
                else []
            )
            await conn.execute(q.TOUCH_EXECUTOR, now, executor_id, None)  # executor row last
        return [job_from_row(r) for r in rows]

    async def finish_many(
        self, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        """Lock every job named, decide each report in Python, write all in one statement.

        A report that fails leaves no trace in the batch; a later report on the same
        job sees the state the earlier ones left, as it would one after the other.
        """
        if not reports:
            return []
        if len(reports) == 1 and now is None and is_plain(reports[0]):
            plain = reports[0]
            job = await self._in_tx(lambda conn: finish_plain(conn, plain), one_statement=True)
            if job is not None:  # else the general path below says why, or decides afresh
                return [job]
        return await self._in_tx(lambda conn: self._finish_locked(conn, reports, now, policy))

    async def _finish_locked(
        self, conn: Any, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        """``finish_many``'s transaction: every decision made afresh on each try."""
        out: list[Job | CorralError] = []
        batch = q.BatchWrite()
        rows = await conn.fetch(q.LOCK_JOBS, sorted({r.job_id for r in reports}))
        current = {row["id"]: job_from_row(row) for row in rows}
        if now is None:  # nothing is written unless a row was found, with the clock
            now = rows[0]["db_now"] if rows else 0.0
        for report in reports:
            try:
                new = self._finish_one(current.get(report.job_id), report, now, policy, batch)
            except Exception as exc:  # one report's failure must not fail its batch
                out.append(lost.report_failed(report.job_id, exc))
                continue
            current[new.id] = new
            out.append(new)
        if batch.jobs:
            await flow.lock_keys(conn, flow.keys_of(current.values()))
            if len(batch.completed) > 1:
                await conn.execute(q.LOCK_EXECUTORS, sorted(batch.completed))
            await conn.execute(q.WRITE_BATCH, now, *batch.params())
        if leftovers := leftover_rows(reports, out):
            await conn.executemany(SET_LEFTOVERS.format("$1", "$2", "$3"), leftovers)
        return out

    def _finish_one(
        self, job: Job | None, report: Report, now: float, policy: RetryPolicy, batch: q.BatchWrite
    ) -> Job:
        if job is None:
            raise NotFound("job not found", job_id=report.job_id)
        check_fence(job, report.ref)
        started = job
        chunks = []
        for stream, text in (("stdout", report.outcome.stdout), ("stderr", report.outcome.stderr)):
            if text:
                job, chunk = q.fit(job, stream, text.encode(), self.output_cap)
                chunks += chunk
        new = outcomes.finished(job, report.outcome, now, policy)
        outcome = report.outcome
        status = outcomes.attempt_status(outcome.status)
        batch.end(new, outcome.result, started, status, outcome.exit_code, outcome.error_message)
        batch.output += chunks
        if new.status == JobStatus.COMPLETED and started.executor_id is not None:
            batch.completed[started.executor_id] += 1
        return new

    async def release(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        async def release(conn: Any) -> Job:
            job = await q.fenced_job(conn, job_id, ref)
            at = await q.at(conn, now)
            new = lost.released(job, at)
            ended, why = lost.release_attempt_end(new)
            await conn.execute(
                q.RELEASE,
                job.seq,
                at,
                job.id,
                job.attempt,
                new.status.value,
                new.finished_at,
                new.error_message,
                ended.value,
                why,
            )
            return new

        return await self._in_tx(release)

    async def return_unstarted(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        async def hand_back(conn: Any) -> Job:
            job = await q.job_or_404(conn, job_id, lock=True)
            status = await conn.fetchval(q.ATTEMPT_STATUS, job.id, job.attempt)
            check_late_release(job, ref, None if status is None else AttemptStatus(status))
            await conn.execute(q.RETURN_UNSTARTED, job.seq, LATE_RELEASE, job.id, job.attempt)
            return returned_unstarted(job)

        return await self._in_tx(hand_back)

    async def cancel(self, job_id: str, now: float, pending_only: bool = False) -> Job:
        async def cancel(conn: Any) -> Job:
            job = await q.job_or_404(conn, job_id, lock=True)
            if pending_only:
                check_pending(job.id, job.status)
            if job.status == JobStatus.RUNNING:
                await conn.execute(q.CANCEL_REQUEST, job.seq)
                return dataclasses.replace(job, cancel_requested=True)
            check_transition(job.id, job.status, JobStatus.CANCELLED)
            await conn.execute(q.CANCEL_NOW, now, job.seq)
            return outcomes.cancelled_waiting(job, now)

        return await self._in_tx(cancel)

    async def reap_expired(
        self,
        now: float | None,
        policy: RetryPolicy,
        limit: int,
        spare_longer_than: float | None = None,
    ) -> list[Job]:

        async def reap(conn: Any) -> list[Job]:
            at = await q.at(conn, now)
            rows = await conn.fetch(q.REAP_CANDIDATES, at, limit, spare_longer_than)
            return await q.end_lost(conn, rows, at, policy, lost.EXPIRED)

        return await self._in_tx(reap)

    async def expire_executor_leases(
        self, executor_id: str, keep_principal_id: str, now: float | None, policy: RetryPolicy
    ) -> list[Job]:

        async def take_over(conn: Any) -> list[Job]:
            at = await q.at(conn, now)
            rows = await conn.fetch(q.LOCK_TAKEN_OVER, executor_id, keep_principal_id)
            return await q.end_lost(conn, rows, at, policy, lost.TAKEN_OVER)

        return await self._in_tx(take_over)

    async def next_run_after(self, now: float) -> float | None:
        value = await self._fetchval(q.NEXT_RUN_AFTER, now)
        return None if value is None else float(value)

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
        async with self._tx() as conn:
            job = await q.fenced_job(conn, job_id, ref)
            q.check_stream(stream)
            before = job.stdout if stream == "stdout" else job.stderr
            fresh = outcomes.unseen(before.size, data, at)
            job, chunk = q.fit(job, stream, fresh, self.output_cap, truncated=truncated)
            after = job.stdout if stream == "stdout" else job.stderr
            kept = chunk[0][4] if chunk else None
            await conn.execute(
                q.append_sql(stream),
                job.id,
                job.attempt,
                before.size,
                kept,
                after.size,
                int(after.truncated),
                job.seq,
            )
        return OutputSlice(b"", before.size, after.size, after.truncated, job.attempt)

    async def read_output(self, job_id: str, stream: str, offset: int, limit: int) -> OutputSlice:
        q.check_stream(stream)
        async with self._conn() as conn:
            job = await q.job_or_404(conn, job_id)
            rows = await conn.fetch(
                q.READ_OUTPUT, job_id, job.attempt, stream, offset, offset + limit
            )
        state = job.stdout if stream == "stdout" else job.stderr
        data = splice([(r[0], r[1]) for r in rows], offset, limit)
        return OutputSlice(data, offset, state.size, state.truncated, job.attempt)
