"""What an ended attempt reports, and the batching side task that delivers reports.

``report_for`` is pure: it maps how an attempt ended to the body of one
``POST /jobs/results`` item, or to None when the attempt is no longer ours to
report. The ``ResultReporter`` sends whatever reports have accumulated in one
request, so a worker finishing hundreds of short jobs per second does not make
hundreds of round trips. An outcome is kept until the dispatcher has decided it
(accepted, or refused that one report): through outages, 5xx and 429 it is sent
again with jittered backoff, because a lost outcome would make the dispatcher run
the job again, or record a success as a failure.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from corral.agent.backoff import Backoff
from corral.agent.dispatcher import Dispatcher, DispatcherError, Unreachable
from corral.agent.executor import JobRun, RunResult, StopReason
from corral.agent.renewal import Fatal, log_extra

log = logging.getLogger("corral.agent.reports")

MAX_BATCH = 500
LINGER = 0.025  # seconds a busy reporter waits for more outcomes to share one request
BUSY_WITHIN = 0.05  # a send that ended this recently means outcomes are streaming in


def report_for(run: JobRun, result: RunResult) -> dict[str, Any] | None:
    """The outcome report of an ended attempt; None when it must not be reported."""
    base: dict[str, Any] = {"job_id": run.job_id, "attempt": run.attempt}
    if result.notes:  # outputs that could not be saved: said in the result, not fatal
        base["result"] = {"output_notes": list(result.notes)}
    if result.leftover_processes is not None:  # killed with its cgroup after the leader
        base["leftover_processes"] = result.leftover_processes
    reason = result.stop_reason
    if reason in (StopReason.LOST, StopReason.LEASE_EXPIRED):
        return None  # someone else holds (or will hold) the job now
    if result.error is not None:
        return {
            **base,
            "status": "failed",
            "error_message": result.error,
            "retry": result.retryable,
        }
    if not result.started:
        if reason is StopReason.CANCEL:
            return {**base, "status": "cancelled"}
        return None  # stopped by shutdown before it ran: released, not reported
    code = {"exit_code": result.exit_code}
    if reason is StopReason.CANCEL:
        return {**base, **code, "status": "cancelled"}
    if reason is StopReason.TIMEOUT:
        message = f"timed out after {run.spec.timeout} s"
        return {**base, **code, "status": "failed", "error_message": message}
    if reason is StopReason.SHUTDOWN:
        message = "the worker shut down before the job finished"
        return {**base, **code, "status": "failed", "error_message": message, "retry": True}
    if result.returncode == 0:
        return {**base, **code, "status": "completed"}
    message = result.limit_error or _exit_message(result)
    return {**base, **code, "status": "failed", "error_message": message}


def _exit_message(result: RunResult) -> str:
    returncode = result.returncode or 0
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


Entry = tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]


class ResultReporter:
    """Side task that delivers queued reports in batches; ``submit`` returns the answer."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._queue: list[Entry] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._asked_wait = 0.0  # a Retry-After the dispatcher sent with its last refusal

    def submit(self, report: dict[str, Any]) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append((report, future))
        self._idle.clear()
        self._wake.set()
        return future

    async def drained(self) -> None:
        """Wait until every submitted report has an answer."""
        await self._idle.wait()

    async def run(self) -> None:
        backoff = Backoff()
        failures = 0
        last_send = -1.0
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                # An outcome after a quiet spell goes out at once; under load, linger a
                # moment so dozens of outcomes share a request instead of one each.
                if loop.time() - last_send < BUSY_WITHIN and len(self._queue) < MAX_BATCH:
                    await asyncio.sleep(LINGER)
                # Each failure in a row halves the batch: should one report make the
                # dispatcher fail every request it is in, the others still get through.
                size = max(1, MAX_BATCH >> failures)
                batch, self._queue = self._queue[:size], self._queue[size:]
                again = await self._deliver(batch)
                last_send = loop.time()
                if not again:
                    failures = 0
                    backoff.reset()
                    continue
                # Not answered, or answered "try later": keep them, at the back of the
                # line, and pause (with jitter) before the next try. Their jobs stay
                # held, so the heartbeat keeps renewing their leases meanwhile.
                failures = min(failures + 1, MAX_BATCH.bit_length())
                self._queue.extend(again)
                delay = max(backoff.next(), self._asked_wait)
                self._asked_wait = 0.0
                log.warning(
                    "results not delivered; retrying",
                    extra={"action": "results_retry", "pending": len(again), "delay": delay},
                )
                await asyncio.sleep(delay)
            self._idle.set()

    async def _deliver(self, batch: list[Entry]) -> list[Entry]:
        """Send ``batch`` once; settle what the dispatcher decided, return what to resend.

        Only a decision about one report (409 stale, 404 gone, ...) settles it as
        refused: a whole request refused for a passing reason (5xx, 429, no answer)
        decides nothing, and one refused as malformed is split until the report at
        fault stands alone.
        """
        try:
            answers = await self.dispatcher.results([r for r, _ in batch])
        except Unreachable as exc:
            log.warning("results unreachable", extra=log_extra("results_unreachable", exc))
            return batch
        except DispatcherError as exc:
            if transient(exc.status):
                log.warning("results deferred", extra=log_extra("results_deferred", exc))
                self._asked_wait = max(self._asked_wait, exc.retry_after or 0.0)
                return batch
            if exc.status in (401, 403):
                _settle_error(batch, exc)
                raise Fatal(f"results refused: {exc}") from exc
            if len(batch) > 1:
                half = len(batch) // 2
                return await self._deliver(batch[:half]) + await self._deliver(batch[half:])
            _settle_error(batch, exc)
            return []
        return _settle(batch, answers)


def transient(status: int) -> bool:
    """A status that says "not now" rather than "no": the report must be sent again."""
    return status == 0 or status == 429 or status >= 500


def _settle(batch: list[Entry], answers: list[dict[str, Any]]) -> list[Entry]:
    """Hand each report its own answer; return those the dispatcher did not decide."""
    by_id = {a.get("job_id"): a for a in answers}
    again: list[Entry] = []
    for entry in batch:
        report, future = entry
        answer = by_id.get(report["job_id"], {"ok": False, "error": "no answer", "code": 0})
        if not answer.get("ok") and transient(int(answer.get("code") or 0)):
            again.append(entry)
        elif not future.done():
            future.set_result(answer)
    return again


def _settle_error(batch: list[Entry], exc: DispatcherError) -> None:
    log.error("results refused", extra={"action": "results_refused", "error": str(exc)})
    for report, future in batch:
        if not future.done():
            future.set_result(
                {"job_id": report["job_id"], "ok": False, "error": exc.message, "code": exc.status}
            )
