"""Running claimed jobs: their slots, their lease check at start, and what the dispatcher
hears when each one ends (an outcome, a hand-back, or nothing).

Every claimed job holds a slot from claim until its process has exited; up to
``concurrency`` of them hold a run slot too, the rest wait (prefetched). A job
never starts once its lease has run out by this worker's own monotonic clock,
counted from when the claim was *sent*: a worker frozen (SIGSTOP, a VM pause)
while the answer was in flight would otherwise start a job the dispatcher has
already given to someone else. Such a job, and any job stopped by a drain before
it started, is handed back, retrying until the dispatcher answers, so a job this
worker never started spends none of its retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from corral.agent.backoff import Backoff
from corral.agent.dispatcher import (
    Dispatcher,
    DispatcherError,
    JobOutputSink,
    Unreachable,
    parse_job,
)
from corral.agent.executor import Execution, JobRun, RunResult, StopReason
from corral.agent.output import SPOOL_QUOTA, OutputForwarder
from corral.agent.renewal import Held, Renewal, log_extra
from corral.agent.reports import ResultReporter, report_for
from corral.agent.slots import RunSlots
from corral.agent.spool import DiskQuota
from corral.agent.workdir import Executor
from corral.domain.jobs import DEFAULT_LEASE_SECONDS

log = logging.getLogger("corral.agent")

# Ends of an unstarted job that hand it back: the job is not ours to run any more, or not now.
HAND_BACK = (StopReason.SHUTDOWN, StopReason.LEASE_EXPIRED)


class JobRunner:
    """Slots, run slots and the life of each held job after its claim."""

    def __init__(
        self,
        executor: Executor,
        dispatcher: Dispatcher,
        leases: Renewal,
        reporter: ResultReporter,
        concurrency: int,
    ) -> None:
        self.executor = executor
        self.dispatcher = dispatcher
        self.leases = leases
        self.reporter = reporter
        self.concurrency = concurrency
        self.taken = 0  # slots: jobs claimed and not yet exited
        self.freed = asyncio.Event()  # set whenever a slot frees up
        self._run_slots = RunSlots(concurrency)
        self.spool_quota = DiskQuota(SPOOL_QUOTA)  # unsent output of all jobs, on disk

    def start(self, job: dict[str, Any], since: float) -> None:
        """Take a slot and launch the runner of a freshly claimed job whose lease began
        no earlier than ``since`` (monotonic)."""
        run = parse_job(job)
        lease = float(job.get("lease_seconds") or DEFAULT_LEASE_SECONDS)
        forwarder = OutputForwarder(
            JobOutputSink(self.dispatcher, run.job_id, run.attempt),
            job_id=run.job_id,
            spool_dir=self.executor.spool_dir,
            spool_quota=self.spool_quota,
            secret_env=run.spec.secret_env,  # its values are blanked in the output
        )
        execution = Execution(self.executor, run, forwarder)
        held = Held(run, lease, execution)
        execution.may_start = lambda: _lease_left(held)
        self.taken += 1
        self.leases.hold(held, since)
        extra = log_extra("job_claimed", job_id=run.job_id, attempt=run.attempt)
        log.debug("job claimed", extra=extra)
        held.task = asyncio.get_running_loop().create_task(self._run_job(held))

    async def _run_job(self, held: Held) -> None:
        result = await self._execute(held)
        _log_finished(held.run, result)
        try:
            if not result.started and result.stop_reason in HAND_BACK and result.error is None:
                await asyncio.shield(self.release(held.run))
                return
            report = report_for(held.run, result)
            if report is not None:
                await held.execution.forwarder.settle()  # its output, then its outcome
                answer = await asyncio.shield(self.reporter.submit(report))
                if not answer.get("ok"):
                    _log_refused(held.run, answer)
        finally:
            held.execution.forwarder.discard()
            self.leases.forget(held)

    async def _execute(self, held: Held) -> RunResult:
        try:
            if not await self._run_slots.take(held.execution):
                # stopped while it waited for a slot: it never ran
                return RunResult(False, stop_reason=held.execution.stop_reason)
            try:
                return await held.execution.run()
            finally:
                self._run_slots.give_back()
        except Exception as exc:  # a bug or a worker-side failure: not the job's fault
            log.exception("job crashed in the agent", extra=log_extra("job_crashed", exc))
            return RunResult(held.execution.started, error=f"worker error: {exc!r}", retryable=True)
        finally:
            self.taken -= 1
            self.freed.set()

    async def release(self, run: JobRun) -> None:
        """Hand back a job that never started, retrying while the dispatcher is away or
        failing (5xx, 429); a refusal (409: no longer ours) ends it. A drain that runs out
        of time cancels it: the dispatcher's reaper then takes the job back."""
        backoff = Backoff()
        extra = log_extra("job_released", job_id=run.job_id, attempt=run.attempt)
        while True:
            try:
                await self.dispatcher.release(run.job_id, run.attempt)
                log.info("job released", extra=extra)
                return
            except DispatcherError as exc:
                if exc.status < 500 and exc.status != 429:
                    log.warning(
                        "release refused",
                        extra=log_extra("release_refused", exc, job_id=run.job_id),
                    )
                    return
                error: Exception = exc
            except Unreachable as exc:
                error = exc
            delay = backoff.next()
            log.warning(
                "release failed; retrying",
                extra=log_extra("release_failed", error, job_id=run.job_id, delay=delay),
            )
            await asyncio.sleep(delay)


def _lease_left(held: Held) -> bool:
    """Whether the job's lease is still running by this worker's clock."""
    return not held.expired and held.expires > time.monotonic()


def _log_finished(run: JobRun, result: RunResult) -> None:
    log.info(
        "job finished",
        extra={
            "action": "job_finished",
            "job_id": run.job_id,
            "attempt": run.attempt,
            "exit_code": result.exit_code,
            "stop_reason": result.stop_reason,
            "error": result.error,
            "duration": round(result.duration, 3),
            "dropped_output": result.dropped,
        },
    )


def _log_refused(run: JobRun, answer: dict[str, Any]) -> None:
    log.warning(
        "outcome refused",
        extra={
            "action": "job_report_refused",
            "job_id": run.job_id,
            "attempt": run.attempt,
            "error": answer.get("error"),
            "code": answer.get("code"),
        },
    )


def claim_began(sent: float, job: dict[str, Any]) -> float:
    """When (monotonic) the job's lease began at the earliest: when the claim was sent,
    plus the seconds the dispatcher says the claim waited before leasing it (a long
    poll), never more than the time that has really gone by."""
    waited = job.get("claim_waited")
    if not isinstance(waited, int | float) or isinstance(waited, bool) or waited < 0:
        waited = 0.0
    return sent + min(float(waited), max(0.0, time.monotonic() - sent))
