"""Creating, reading, changing and deleting schedules: what the schedule routes call.

Any change wakes the scheduler here at once and, on PostgreSQL, the schedulers
of the other replicas (``SCHEDULES`` announced through LISTEN/NOTIFY), so a new
schedule's first tick is never waited for behind a long sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.jobs import Job, JobDraft
from corral.domain.principals import Principal
from corral.domain.schedules import CatchUp, Overlap, Schedule, restart_from, validate
from corral.errors import Conflict, InvalidInput, NotFound
from corral.services.jobs import JobService
from corral.services.scheduler import SCHEDULES, Scheduler
from corral.store.base import Store

LAST_JOBS = 10  # jobs shown with a schedule
UPDATE_ATTEMPTS = 5  # a change retried this often if ticks keep moving the cursor


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    name: str
    cron: str
    job: JobDraft
    timezone: str = "UTC"
    overlap: Overlap = Overlap.SKIP
    catch_up: CatchUp = CatchUp.NONE
    jitter_seconds: int = 0
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleChanges:
    """A PATCH: None leaves a field as it is."""

    name: str | None = None
    cron: str | None = None
    timezone: str | None = None
    job: JobDraft | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    jitter_seconds: int | None = None
    paused: bool | None = None

    def given(self) -> dict[str, object]:
        return {
            f.name: v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None
        }


@dataclass(frozen=True, slots=True)
class ScheduleView:
    schedule: Schedule
    upcoming: list[float]  # the next ticks it will fire for (none while paused)
    last_jobs: list[Job]  # newest tick first


# A change to one of these starts the schedule afresh from now: ticks before it
# belonged to another timetable (or to a pause), so they are not "missed".
_RESTARTING = ("cron", "timezone", "paused")


class ScheduleService:
    def __init__(self, store: Store, jobs: JobService, scheduler: Scheduler) -> None:
        self._store = store
        self._jobs = jobs
        self._scheduler = scheduler

    async def create(self, principal: Principal, given: ScheduleInput) -> ScheduleView:
        require(principal, Action.SUBMIT)
        cron = validate(given.name, given.cron, given.timezone, given.jitter_seconds)
        await self._check_job(principal.id, given.job)
        now = await self._scheduler.now()
        fresh = Schedule(
            id=str(uuid.uuid4()),
            name=given.name,
            owner_id=principal.id,
            cron=cron.expression,
            timezone=given.timezone,
            job=given.job,
            overlap=given.overlap,
            catch_up=given.catch_up,
            jitter_seconds=given.jitter_seconds,
            paused=given.paused,
            created_at=now,
            updated_at=now,
            last_tick=now,
            next_fire_at=None,
        )
        schedule = restart_from(fresh, now)
        await self._store.create_schedule(schedule)
        await self._changed()
        return await self._view(schedule, now)

    async def list(self, principal: Principal) -> list[ScheduleView]:
        require(principal, Action.READ)
        now = await self._scheduler.now()
        schedules = await self._store.list_schedules()
        return list(await asyncio.gather(*(self._view(s, now) for s in schedules)))

    async def get(self, principal: Principal, schedule_id: str) -> ScheduleView:
        schedule = await self._find(principal, schedule_id)
        return await self._view(schedule, await self._scheduler.now())

    async def update(
        self, principal: Principal, schedule_id: str, changes: ScheduleChanges
    ) -> ScheduleView:
        """For the owner or an admin; a new cron, zone or resume restarts it from now.

        The write is a compare-and-set on the cursor: if a tick moved it meanwhile,
        the change is made again on the fresh row, never over the tick's move."""
        for _ in range(UPDATE_ATTEMPTS):
            schedule = await self._find(principal, schedule_id)
            require(principal, Action.CANCEL, owner_id=schedule.owner_id)
            changed = await self._changed_schedule(schedule, changes)
            if await self._store.update_schedule(changed, schedule.last_tick):
                await self._changed()
                return await self._view(changed, changed.updated_at)
        raise Conflict("the schedule kept ticking under the change; try again")

    async def _changed_schedule(self, schedule: Schedule, changes: ScheduleChanges) -> Schedule:
        fields = changes.given()
        changed = dataclasses.replace(schedule, **fields)  # type: ignore[arg-type]
        cron = validate(changed.name, changed.cron, changed.timezone, changed.jitter_seconds)
        changed = dataclasses.replace(changed, cron=cron.expression)
        if changes.job is not None:
            await self._check_job(schedule.owner_id, changes.job)
        now = await self._scheduler.now()
        if any(name in fields and fields[name] != getattr(schedule, name) for name in _RESTARTING):
            changed = restart_from(changed, now)
        else:  # the jitter may have moved the next tick's due time
            changed = restart_from(changed, changed.last_tick)
        return dataclasses.replace(changed, updated_at=now)

    async def delete(self, principal: Principal, schedule_id: str) -> None:
        """For the owner or an admin; the jobs it fired stay, and keep its id."""
        schedule = await self._find(principal, schedule_id)
        require(principal, Action.CANCEL, owner_id=schedule.owner_id)
        await self._store.delete_schedule(schedule_id)
        await self._changed()

    async def _check_job(self, owner_id: str, job: JobDraft) -> None:
        """The submit's own checks, errors named under ``job.`` as the body nests it."""
        try:
            await self._jobs.check_drafts(owner_id, [job])
        except InvalidInput as exc:
            field = exc.context.get("field")
            context = {**exc.context, "field": f"job.{field}" if field else "job"}
            raise InvalidInput(f"job: {exc.message}", **context) from exc

    async def _find(self, principal: Principal, schedule_id: str) -> Schedule:
        require(principal, Action.READ)
        schedule = await self._store.get_schedule(schedule_id)
        if schedule is None:
            raise NotFound("schedule not found", schedule_id=schedule_id)
        return schedule

    async def _view(self, schedule: Schedule, now: float) -> ScheduleView:
        jobs = await self._store.schedule_jobs(schedule.id, LAST_JOBS)
        return ScheduleView(schedule, schedule.upcoming(now), jobs)

    async def _changed(self) -> None:
        """Wake the scheduler here, and those of the other replicas."""
        self._scheduler.wake()
        await self._store.announce(SCHEDULES)
