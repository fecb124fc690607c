"""The scheduler loop: every replica runs one, and each tick still fires once.

There is no leader. Each pass reads the schedules that are due, lets the domain
decide each tick (``domain.schedules.decide``), and hands the decision to the
store, which applies it only if the schedule's cursor is where this replica read
it (compare-and-set, with the job's insert in the same transaction). A replica
that loses the race changes nothing and moves on; one that restarts simply finds
the cursor where the others left it.

Between passes the loop sleeps until the soonest next tick is due, and no longer
than ``IDLE_SLEEP``; a schedule created or changed (here, or on another replica
through LISTEN/NOTIFY) wakes it at once. It never looks at the store more than
once a second unless a tick is due sooner.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from corral.domain.jobs import Job, NewJob
from corral.domain.schedules import Overlap, Schedule, Tick, decide
from corral.domain.states import JobStatus
from corral.errors import Unavailable
from corral.services.events import JOBS, Hub, Signal, job_topic
from corral.services.metrics import Metrics
from corral.store.base import RESYNC, Store

log = logging.getLogger("corral.services")
SCHEDULES = "schedules"  # topic announced when a schedule is created or changed
IDLE_SLEEP = 60.0  # the longest sleep; only a safety net, changes wake the loop
RETRY_SLEEP = 1.0  # after a failed pass, or a pass that left a tick due
LATE_MARGIN = 0.001  # wake just after the due time, so the tick is past, not at hand
BUSY_LIMIT = 100  # earlier unfinished jobs looked at (and cancelled) per tick


class Scheduler:
    def __init__(
        self, store: Store, hub: Hub, metrics: Metrics, clock: Callable[[], float] | None = None
    ) -> None:
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._signal = Signal()
        self.passes = 0  # passes made, for tests that check the loop is not polling

    def wake(self) -> None:
        self._signal.fire()

    def heard(self, topic: str) -> None:
        """A store listener: another replica changed a schedule (or, ``RESYNC``, may
        have while the database was away)."""
        if topic in (SCHEDULES, RESYNC):
            self._signal.fire()

    async def now(self) -> float:
        return self._clock() if self._clock is not None else await self._store.clock()

    async def run_forever(self) -> None:
        while True:
            seen = self._signal.generation
            delay = await self._pass_and_delay()
            await self._signal.wait(seen, delay)

    async def _pass_and_delay(self) -> float:
        """Run one pass; return how long to sleep before the next."""
        try:
            now = await self.now()
            await self.run_once(now)
            due = await self._store.next_schedule_due()
            after = await self.now()
        except Unavailable:  # the store logs the outage once; retry soon, quietly
            return RETRY_SLEEP
        except Exception:
            log.exception("scheduler pass failed", extra={"action": "schedule_pass_failed"})
            return RETRY_SLEEP
        if due is None:
            return IDLE_SLEEP
        if due <= now:  # the pass could not settle it: do not spin on it
            return RETRY_SLEEP
        return min(IDLE_SLEEP, max(0.0, due - after) + LATE_MARGIN)

    async def run_once(self, now: float) -> list[Job]:
        """Decide every due schedule at ``now``; return the jobs this replica fired."""
        self.passes += 1
        fired: list[Job] = []
        for schedule in await self._store.due_schedules(now):
            try:
                fired += await self._decide(schedule, now)
            except Exception:  # one broken schedule must not stop the others
                log.exception(
                    "schedule tick failed",
                    extra={"action": "schedule_tick_failed", "schedule_id": schedule.id},
                )
        return fired

    async def _decide(self, schedule: Schedule, now: float) -> list[Job]:
        earlier: list[Job] = []
        if schedule.overlap is not Overlap.ALLOW:
            earlier = await self._store.schedule_jobs(schedule.id, BUSY_LIMIT, unfinished=True)
        tick = decide(schedule, now, busy=bool(earlier))
        if tick is None:
            return []
        new_jobs = [self._job_for(schedule, at, now) for at in tick.fire]
        if not await self._store.fire_schedule(schedule.id, schedule.last_tick, tick, new_jobs):
            return []  # another replica decided it first
        self._log(schedule, tick)
        if tick.cancel_previous:
            await self._cancel(earlier, now)
        if new_jobs:
            self._announce(len(new_jobs))
        return [job.stored(0) for job in new_jobs]

    @staticmethod
    def _job_for(schedule: Schedule, tick: float, now: float) -> NewJob:
        """The schedule's job for ``tick``, owned by the schedule's owner."""
        new = schedule.job.to_new_job(str(uuid.uuid4()), schedule.owner_id, now)
        return dataclasses.replace(new, schedule_id=schedule.id, scheduled_for=tick)

    async def _cancel(self, earlier: list[Job], now: float) -> None:
        """``cancel_previous``: stop the schedule's earlier runs; a finished one stays."""
        for job in earlier:
            try:
                cancelled = await self._store.cancel(job.id, now)
            except Exception:
                log.warning("could not cancel a previous run", extra={"job_id": job.id})
                continue
            if cancelled.status is JobStatus.CANCELLED:
                self._metrics.jobs_finished.labels(status="cancelled").inc()
                self._hub.events.finished([cancelled], time.time())
            self._hub.fire(job_topic(job.id))
        self._hub.job_changed()

    def _announce(self, count: int) -> None:
        self._metrics.jobs_submitted.inc(count)
        self._hub.fire(JOBS)
        self._hub.job_changed()

    @staticmethod
    def _log(schedule: Schedule, tick: Tick) -> None:
        log.info(
            "schedule ticked",
            extra={
                "action": "schedule_fired" if tick.fire else "schedule_skipped",
                "schedule_id": schedule.id,
                "tick": tick.tick,
                "fired_for": list(tick.fire),
                "skipped": tick.skipped,
            },
        )
