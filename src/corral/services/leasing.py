"""The executor side of a job's life: claim, renew, report, release, stream output.

Every call after a claim names its attempt; the store fences off any attempt
that no longer holds the lease, so a worker that was presumed dead can never
overwrite the result of the attempt that replaced it.

Lease times (expiries, backoffs) are read from the store's clock (``now=None``):
on PostgreSQL the database's, so replicas whose wall clocks disagree still agree
on when a lease runs out. This process's clock only stamps events and metrics.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from corral.auth.policy import (
    Action,
    require,
    require_executor,
    require_executor_owner,
    require_project,
)
from corral.domain.bounds import bounded_outcome
from corral.domain.jobs import AttemptRef, ClaimRequest, Job, Outcome
from corral.domain.principals import Principal, Role
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus
from corral.errors import (
    CorralError,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleAttempt,
    Unavailable,
)
from corral.services.event_wire import Stored
from corral.services.events import JOBS, Hub, job_topic
from corral.services.metrics import Metrics
from corral.store.base import Store
from corral.store.leases_port import OutputSlice, Report

MAX_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class HeldLeases:
    """The answer to a worker's heartbeat: what it still holds and what to stop."""

    renewed: list[Job]
    lost: list[str]
    cancel: list[str]


class LeaseService:
    def __init__(
        self,
        store: Store,
        hub: Hub,
        metrics: Metrics,
        policy: RetryPolicy,
        output_cap: int = 1 << 20,
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self.policy = policy
        # Bytes kept per output stream, and of a report's ``result`` (domain/bounds.py).
        self.output_cap = output_cap

    def fence(self, principal: Principal, executor_id: str, attempt: int | None) -> AttemptRef:
        """Workers are bound to their own leases; admins may act for any executor."""
        require(principal, Action.EXECUTE)
        require_executor(principal, executor_id)
        bound = principal.id if principal.role == Role.WORKER else None
        return AttemptRef(executor_id=executor_id, attempt=attempt, principal_id=bound)

    async def claim(
        self,
        principal: Principal,
        request: ClaimRequest,
        wait: float,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
        gone: Callable[[], Awaitable[object]] | None = None,
    ) -> list[Job]:
        """Lease up to ``request.limit`` jobs, waiting up to ``wait`` seconds for one to arrive.

        After a wait, ``still_wanted`` is asked before leasing anything, so a
        caller that hung up meanwhile never strands a job in a lease nobody holds;
        ``gone`` returns once the caller hung up, and a waiting claim then stops
        waiting at once, before a submit could hand it a job (``handoff.py``).
        """
        require(principal, Action.EXECUTE)
        require_executor(principal, request.executor_id)
        require_project(principal, request.project_id)
        deadline = time.monotonic() + min(max(wait, 0.0), MAX_WAIT)
        signal = self._hub.jobs
        waited = False
        while not self._hub.closing:
            if waited and still_wanted is not None and not await still_wanted():
                return []
            generation = signal.generation
            try:
                jobs = await self._store.claim(request, None)
            except Unavailable:
                if not waited:
                    raise  # not waiting yet: the caller hears of the outage at once
                # Woken while the database is away (its return wakes every waiter, maybe
                # before this replica's pool has a live connection again): the caller asked
                # to wait, so wait on; the next news or a submit's hand-off looks again.
                jobs = []
            self._hub.fleet_changed()  # a claim is also a sign of life: live fleet views refresh
            if jobs:
                self._record_claims(jobs, time.time())
                return jobs
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            handed = await self._park(request, generation, remaining, gone)
            if handed is None:  # the caller hung up
                return []
            if handed:  # a submit leased them to this claim, in its own transaction
                self._hub.fleet_changed()
                self._record_claims(handed, time.time())
                return handed
            waited = True
        return []

    async def _park(
        self,
        request: ClaimRequest,
        generation: int,
        seconds: float,
        gone: Callable[[], Awaitable[object]] | None,
    ) -> list[Job] | None:
        """Wait for new work to be signalled, for the caller to leave, or for a submit to
        hand some work over (``handoff.py``): the jobs it leased to this claim, [] when
        there is news to look at (or none came in time), None once the caller left.

        A submit that took this claim and then failed (the database down, a duplicate
        key) stored nothing: the claim parks again rather than look, since a look would
        only meet the same failure and answer the caller with it."""
        deadline = time.monotonic() + seconds
        while True:
            parked = self._hub.parked.park(request)
            news = asyncio.ensure_future(self._hub.jobs.wait(generation, seconds))
            left = asyncio.ensure_future(gone()) if gone is not None else None
            try:
                waits: list[asyncio.Future[Any]] = [parked.handed, news]
                if left is not None:
                    waits.append(left)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if parked.taken:  # the submit's transaction is under way: its answer is ours
                    handed = await asyncio.shield(parked.handed)
                    if handed is not None:
                        return handed
                else:
                    return None if left is not None and left.done() else []
            except asyncio.CancelledError:
                if parked.taken:  # nobody will hear of these leases: give them back
                    parked.handed.add_done_callback(lambda done: self._hand_back(request, done))
                raise
            finally:
                self._hub.parked.leave(parked)
                news.cancel()
                if left is not None:
                    left.cancel()
            seconds = deadline - time.monotonic()
            if seconds <= 0:
                return []

    def _hand_back(self, request: ClaimRequest, handed: asyncio.Future[list[Job] | None]) -> None:
        for job in handed.result() or []:
            ref = AttemptRef(request.executor_id, job.attempt)
            task = asyncio.ensure_future(self.release(job.id, ref))
            task.add_done_callback(lambda t: t.exception())

    def _record_claims(self, jobs: list[Job], now: float) -> None:
        self._metrics.jobs_claimed.inc(len(jobs))
        for job in jobs:
            leased = job.started_at if job.started_at is not None else now
            self._metrics.queue_wait.observe(max(0.0, leased - max(job.created_at, job.run_after)))
            self._hub.fire(job_topic(job.id))
        self._hub.events.started(jobs, now)
        self._hub.job_changed()

    async def heartbeat(self, job_id: str, ref: AttemptRef, duration: float | None = None) -> Job:
        """As documented, a heartbeat for a job that is not running is a 404.

        ``duration`` lets a caller ask for a longer lease than the job's own (TaskDriver's
        extend-lease); None renews for the job's ``lease_seconds``.
        """
        try:
            return await self._store.renew_lease(job_id, ref, None, duration)
        except InvalidTransition as exc:
            raise NotFound("job is not running", job_id=job_id) from exc

    async def renew_all(
        self, principal: Principal, executor_id: str, held: Sequence[tuple[str, int]]
    ) -> HeldLeases:
        require(principal, Action.EXECUTE)
        require_executor(principal, executor_id)
        executor = await self._store.get_executor(executor_id)
        require_executor_owner(principal, executor.info.principal_id if executor else None)
        holder = principal.id if principal.role == Role.WORKER else None  # as in ``fence``
        renewed = await self._store.renew_executor_leases(
            executor_id, held, None, principal_id=holder
        )
        self._hub.fleet_changed()
        kept = {j.id for j in renewed}
        lost = [job_id for job_id, _ in held if job_id not in kept]
        cancel = [j.id for j in renewed if j.cancel_requested]
        return HeldLeases(renewed, lost, cancel)

    async def finish(self, job_id: str, ref: AttemptRef, outcome: Outcome) -> Job:
        outcome = bounded_outcome(outcome, self.output_cap)
        job = await self._store.finish(job_id, ref, outcome, None, self.policy)
        now = time.time()
        self._publish_report_output(job, outcome, now)
        self._after_finish([job], now)
        return job

    async def finish_many(self, reports: Sequence[Report]) -> list[Job | CorralError]:
        """A report past the bounds, or with a result the store cannot hold, is refused
        alone (``TooLarge``, ``InvalidInput``); the rest are stored."""
        answers: list[Job | CorralError | None] = []
        bounded: list[Report] = []
        for report in reports:
            try:
                outcome = bounded_outcome(report.outcome, self.output_cap)
            except InvalidInput as exc:
                answers.append(exc)
                continue
            answers.append(None)  # filled with the store's answer below
            bounded.append(dataclasses.replace(report, outcome=outcome))
        stored = iter(await self._store.finish_many(bounded, None, self.policy) if bounded else [])
        results = [next(stored) if a is None else a for a in answers]
        now = time.time()
        if self._hub.events.active or self._hub.events.relaying:
            for report, result in zip(reports, results, strict=True):
                if isinstance(result, Job):
                    self._publish_report_output(result, report.outcome, now)
        self._after_finish([r for r in results if isinstance(r, Job)], now)
        return results

    def _publish_report_output(self, job: Job, outcome: Outcome, now: float) -> None:
        """Output that came with the final report is news to watchers, before the end.

        No more than the cap: the store kept at most that much of it, and every
        watcher's queue would otherwise get a copy of whatever the report carried.
        The stored bytes end where the stream now ends (other replicas read them there).
        """
        events = self._hub.events
        if not (events.active or events.relaying):
            return
        for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
            data = text.encode()[: self.output_cap]
            end = (job.stdout if stream == "stdout" else job.stderr).size
            stored = Stored(job.attempt, max(0, end - len(data)), end)
            events.output(job.id, stream, data, now, stored)

    def _after_finish(self, jobs: list[Job], now: float) -> None:
        self._hub.events.finished(jobs, now)
        self._hub.job_changed()
        self._freed(jobs)
        for job in jobs:
            self._metrics.count_finished(job.status)
            self._hub.fire(job_topic(job.id))
            if job.status == JobStatus.PENDING:
                self.wake_at(job.run_after)

    async def release(self, job_id: str, ref: AttemptRef) -> Job:
        """Hand an unstarted job back: queued again, or cancelled if that was asked."""
        try:
            job = await self._store.release(job_id, ref, None)
        except (StaleAttempt, InvalidTransition) as refused:
            try:  # reaped while its worker was away: it may still be handed back
                job = await self._store.return_unstarted(job_id, ref, None)
            except StaleAttempt:
                raise refused from None
        now = time.time()
        if job.status != JobStatus.PENDING:
            self._after_finish([job], now)
            return job
        self._hub.fire(JOBS)
        self._hub.job_changed()
        await self._store.announce(JOBS)
        return job

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
        written = await self._store.append_output(
            job_id, ref, stream, data, at=at, truncated=truncated
        )
        events = self._hub.events
        if events.active or events.relaying:  # only the bytes the store kept (not a resent
            skip = 0 if at is None else max(0, written.offset - at)  # prefix, nor past the cap)
            kept = data[skip : skip + written.size - written.offset]
            stored = Stored(written.attempt, written.offset, written.size)
            events.output(job_id, stream, kept, time.time(), stored)
        self._hub.fire(job_topic(job_id))  # relayed to other replicas by the hub's outbox
        return written

    async def reap(
        self,
        limit: int = 500,
        now: float | None = None,
        spare_longer_than: float | None = None,
    ) -> list[Job]:
        """Requeue or fail expired leases, by the store's clock unless ``now`` is given
        (the reaper passes the reading its clock-jump check approved)."""
        reaped = await self._store.reap_expired(now, self.policy, limit, spare_longer_than)
        self._after_reap(reaped, time.time(), now)
        return reaped

    async def hand_back(self, executor_id: str, keep_principal_id: str) -> list[Job]:
        """End the leases an earlier registration of ``executor_id`` still holds, at once,
        as if they had expired: that registration is gone and will never renew them."""
        ended = await self._store.expire_executor_leases(
            executor_id, keep_principal_id, None, self.policy
        )
        self._after_reap(ended, time.time())
        if ended:
            await self._store.announce(JOBS)
        return ended

    def _after_reap(self, reaped: list[Job], now: float, store_now: float | None = None) -> None:
        self._hub.events.finished(reaped, now)
        self._freed(reaped)
        if reaped:
            self._hub.job_changed()
        for job in reaped:
            self._metrics.jobs_reaped.inc()
            self._hub.fire(job_topic(job.id))
            if job.status == JobStatus.PENDING:
                self.wake_at(job.run_after, store_now)

    def _freed(self, ended: list[Job]) -> None:
        """A job that reserved resources ended: its worker has room again, so claimers
        waiting for room look again now rather than at the end of their long poll.
        A job others wait for ended: its dependants may be claimable now (the store
        settled them in the same transaction), the same wake-up a submit gives.
        A job with a concurrency key ended: the store admitted the key's next held job
        in the same transaction, so it too is claimable now, on every replica."""
        if any(job.spec.placed or job.has_dependants or _freed_slot(job) for job in ended):
            self._wake()

    def wake_at(self, when: float, now: float | None = None) -> None:
        """Wake claimers when a backed-off job becomes due, here and on other replicas.

        ``when`` is a time of the store's clock; ``now``, that clock's reading when
        known, else this process's clock stands in for it.
        """
        delay = max(0.0, when - (time.time() if now is None else now))
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._wake)

    def _wake(self) -> None:
        self._hub.fire(JOBS)
        task = asyncio.ensure_future(self._store.announce(JOBS))
        task.add_done_callback(lambda t: t.exception())


def _freed_slot(job: Job) -> bool:
    """Whether ``job``'s end freed a slot of its concurrency key (a requeue keeps it)."""
    return job.spec.concurrency_key is not None and job.terminal
