"""Keeping leases: one worker-level heartbeat every lease/3, and a timer per held job.

The heartbeat renews every lease the worker holds in one request and brings back
the jobs a user cancelled or the dispatcher gave away. It goes over a connection
pool of its own, and may wait for its answer as long as the earliest lease
allows. Each job's lease clock restarts from when the renewing request was
*sent*; if it runs out (the dispatcher could not be reached in time), the job is
killed, because the dispatcher may already have handed it to another worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from corral.agent.dispatcher import Dispatcher, DispatcherError, Unreachable
from corral.agent.executor import Execution, JobRun, StopReason

log = logging.getLogger("corral.agent.leases")

IDLE_HEARTBEAT = 10.0  # seconds between heartbeats when no lease needs renewing
BUSY_HEARTBEAT = 2.0  # at most this while jobs run: heartbeats also carry user cancels
MIN_PATIENCE = 1.0  # seconds a heartbeat may always take, even on a nearly spent lease


class Fatal(Exception):
    """The agent cannot go on (bad credentials, a crashed side task)."""


@dataclass(eq=False)
class Held:
    """A job this worker holds a lease on, from claim until its outcome is delivered."""

    run: JobRun
    lease_seconds: float
    execution: Execution
    task: asyncio.Task[None] | None = None
    expires: float = 0.0  # monotonic time its lease runs out, by our clock
    expired: bool = False  # the lease timer found it run out (until a renewal says not)


class Renewal:
    """The held jobs, their lease timers, and the heartbeat side task that renews them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        draining: Callable[[], bool],
        reregister: Callable[[], Coroutine[Any, Any, bool]],
        drain: Callable[[], None] | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.draining = draining
        self.reregister = reregister
        self.drain = drain  # called when an admin drains this worker (`corral workers drain`)
        self.held: dict[str, Held] = {}
        self._wake = asyncio.Event()
        self._now = False
        # One timer for every lease, due at the earliest expiry (not one per job): it
        # finds what has run out and sets itself for the next.
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def hold(self, held: Held, since: float) -> None:
        """Track a freshly claimed job whose lease started at ``since`` (monotonic)."""
        self.held[held.run.job_id] = held
        self._restart_lease(held, since)
        self._wake.set()  # the next beat may now be due sooner

    def forget(self, held: Held) -> None:
        if self.held.get(held.run.job_id) is held:
            del self.held[held.run.job_id]
        if not self.held and self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def beat_now(self) -> None:
        self._now = True
        self._wake.set()

    async def run(self) -> None:
        """Beat every lease/3 (capped); a wake-up only recomputes when the next beat is due,
        unless ``beat_now`` asked for one at once (draining)."""
        last = time.monotonic()
        while True:
            interval = self._interval()
            remaining = last + interval - time.monotonic()
            if remaining > 0 and not self._now:
                await sleep_or(self._wake, remaining)
                self._wake.clear()
                continue
            self._now = False
            last = time.monotonic()
            await self._heartbeat(self.patience(last))

    def _interval(self) -> float:
        if not self.held:
            return IDLE_HEARTBEAT
        return min(min(h.lease_seconds for h in self.held.values()) / 3, BUSY_HEARTBEAT)

    def patience(self, now: float) -> float:
        """How long a heartbeat sent at ``now`` may wait for its answer.

        Two thirds of the time left on the earliest lease held: a slow dispatcher that
        answers in time still renews it, and a call stuck on a dead connection is given
        up early enough for one more try on a fresh one before the lease is gone.
        """
        if not self.held:
            return IDLE_HEARTBEAT
        left = min(h.expires for h in self.held.values()) - now
        return max(MIN_PATIENCE, left * 2 / 3)

    def _restart_lease(self, held: Held, sent: float) -> None:
        """(Re)start the job's lease clock from when the renewing request was *sent*."""
        held.expires = sent + held.lease_seconds
        held.expired = False
        self._arm(held.expires)

    def _arm(self, at: float) -> None:
        """Have the lease timer go off at ``at`` (monotonic) unless it is due sooner."""
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_at = at
        self._timer = loop.call_at(loop.time() + (at - time.monotonic()), self._expire_due)

    def _expire_due(self) -> None:
        """Every lease run out by now expires (once); the timer is set for the next."""
        self._timer = None
        now = time.monotonic()
        later = [h for h in self.held.values() if not h.expired and h.expires > now]
        for held in [h for h in self.held.values() if not h.expired and h.expires <= now]:
            held.expired = True
            self._lease_expired(held)
        if later:
            self._arm(min(h.expires for h in later))

    def _lease_expired(self, held: Held) -> None:
        extra = log_extra("lease_expired", job_id=held.run.job_id)
        if held.execution.finished:  # its outcome could not be delivered in time
            log.warning("lease expired before the outcome was delivered", extra=extra)
            return
        log.warning("lease expired without renewal: killing the job", extra=extra)
        held.execution.stop(StopReason.LEASE_EXPIRED)

    async def _heartbeat(self, patience: float) -> None:
        held = list(self.held.values())
        sent = time.monotonic()
        try:
            answer = await self.dispatcher.heartbeat(
                [(h.run.job_id, h.run.attempt) for h in held], self.draining(), patience
            )
        except Unreachable as exc:
            log.warning("heartbeat failed", extra={"action": "heartbeat_failed", "error": str(exc)})
            return
        except DispatcherError as exc:
            if exc.status in (401, 403):
                raise Fatal(f"heartbeat refused: {exc}") from exc
            if exc.status == 404:  # the dispatcher forgot us (e.g. a fresh database)
                await self.reregister()
            log.warning(
                "heartbeat refused", extra={"action": "heartbeat_failed", "error": str(exc)}
            )
            return
        self._apply_heartbeat(answer, {h.run.job_id: h for h in held}, sent)
        if answer.get("register"):  # removed by an admin while running: say who we are again
            log.info("registering again", extra=log_extra("reregister"))
            await self.reregister()

    def _apply_heartbeat(self, answer: dict[str, Any], held: dict[str, Held], sent: float) -> None:
        if answer.get("drain") and self.drain is not None and not self.draining():
            log.info("drained by the dispatcher", extra=log_extra("drain_requested"))
            self.drain()
        for renewed in answer.get("renewed", []):
            job = held.get(renewed.get("job_id"))
            if job is not None and job.run.attempt == renewed.get("attempt"):
                self._restart_lease(job, sent)
        # A finished job still held is one whose outcome is on its way; the dispatcher may
        # already have recorded it and then calls it lost: nothing to kill.
        for job_id in answer.get("lost", []):
            if (job := held.get(job_id)) is not None and not job.execution.finished:
                extra = log_extra("lease_lost", job_id=job_id)
                log.warning("lease lost: killing the job", extra=extra)
                job.execution.stop(StopReason.LOST)
        for job_id in answer.get("cancel", []):
            if (job := held.get(job_id)) is not None and not job.execution.finished:
                extra = log_extra("job_cancel_requested", job_id=job_id)
                log.info("cancel requested", extra=extra)
                job.execution.stop(StopReason.CANCEL)


async def sleep_or(event: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` unless ``event`` is set first.

    ``asyncio.wait`` rather than ``wait_for``: on Python 3.11 ``wait_for`` swallows a
    cancel that lands as the event is set, and a side task that ignores its cancel
    keeps the worker from ever exiting.
    """
    if event.is_set():
        return
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter}, timeout=max(seconds, 0.0))
    finally:
        waiter.cancel()


def log_extra(action: str, error: BaseException | None = None, **fields: Any) -> dict[str, Any]:
    """The ``extra`` of a structured log line: a stable action name, then the details."""
    if error is not None:
        fields["error"] = str(error)
    return {"action": action, **fields}
