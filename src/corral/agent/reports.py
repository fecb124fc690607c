"""What an ended attempt reports, and the batching side task that delivers reports.

``report_for`` is pure: it maps how an attempt ended to the body of one
``POST /jobs/results`` item, or to None when the attempt is no longer ours to
report. The ``ResultReporter`` sends whatever reports have accumulated in one
request, so a worker finishing hundreds of short jobs per second does not make
hundreds of round trips; it retries through outages with backoff, because a lost
outcome would make the dispatcher run the job again.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from corral.agent.backoff import Backoff
from corral.agent.dispatcher import Dispatcher, DispatcherError, Unreachable
from corral.agent.executor import JobRun, RunResult, StopReason

log = logging.getLogger("corral.agent.reports")

MAX_BATCH = 500
LINGER = 0.025  # seconds a busy reporter waits for more outcomes to share one request
BUSY_WITHIN = 0.05  # a send that ended this recently means outcomes are streaming in


def report_for(run: JobRun, result: RunResult) -> dict[str, Any] | None:
    """The outcome report of an ended attempt; None when it must not be reported."""
    base: dict[str, Any] = {"job_id": run.job_id, "attempt": run.attempt}
    if result.notes:  # outputs that could not be saved: said in the result, not fatal
        base["result"] = {"output_notes": list(result.notes)}
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
    return {**base, **code, "status": "failed", "error_message": _exit_message(result)}


def _exit_message(result: RunResult) -> str:
    returncode = result.returncode or 0
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exited with code {returncode}"


class ResultReporter:
    """Side task that delivers queued reports in batches; ``submit`` returns the answer."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self._queue: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

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
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                try:
                    answers = await self.dispatcher.results([r for r, _ in batch])
                except Unreachable as exc:
                    self._queue[:0] = batch  # keep order; try again after a pause
                    delay = backoff.next()
                    log.warning(
                        "results not delivered; retrying",
                        extra={"action": "results_retry", "error": str(exc), "delay": delay},
                    )
                    await asyncio.sleep(delay)
                    continue
                except DispatcherError as exc:
                    _settle_error(batch, exc)
                    continue
                backoff.reset()
                _settle(batch, answers)
                last_send = loop.time()
            self._idle.set()


def _settle(
    batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]],
    answers: list[dict[str, Any]],
) -> None:
    by_id = {a.get("job_id"): a for a in answers}
    for report, future in batch:
        answer = by_id.get(report["job_id"], {"ok": False, "error": "no answer", "code": 0})
        if not future.done():
            future.set_result(answer)


def _settle_error(
    batch: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]], exc: DispatcherError
) -> None:
    log.error("results refused", extra={"action": "results_refused", "error": str(exc)})
    for report, future in batch:
        if not future.done():
            future.set_result(
                {"job_id": report["job_id"], "ok": False, "error": exc.message, "code": exc.status}
            )
