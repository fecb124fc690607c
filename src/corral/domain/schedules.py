"""Schedules: a cron expression that submits one job per tick, and the rules of a tick.

A schedule keeps a cursor, ``last_tick``: every tick at or before it has been
decided, fired or skipped, exactly once. Deciding a tick moves the cursor with a
compare-and-set in the store, in the same transaction as the job it fires, so
replicas racing for a tick cannot both win; the store's unique key on (schedule,
tick) is the second lock on that door.

The rules, all pure functions of ``now``:
- A tick is on time while at most ``MISFIRE_GRACE`` late; ticks that fell due
  while no scheduler ran (or one stalled) are missed. One pass decides every due
  tick at once and moves the cursor to the newest, so it never fires a burst.
- ``catch_up``: ``none`` skips missed ticks (only an on-time tick fires); ``one``
  fires one job, for the newest missed tick, however many were missed, besides
  the on-time tick if there is one.
- ``overlap``: with a previous job of the schedule still pending or running,
  ``allow`` fires anyway, ``skip`` passes the tick over, ``cancel_previous``
  cancels the earlier jobs and fires.
- ``jitter_seconds`` delays a tick's job by a fixed fraction of it, the same on
  every replica (a hash of schedule and tick); ``scheduled_for`` stays the tick.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import StrEnum

from corral.domain.cron import Cron
from corral.domain.jobs import JobDraft
from corral.errors import InvalidInput

MISFIRE_GRACE = 1.0  # seconds a tick may be late and still count as on time
MAX_JITTER = 86400
MAX_NAME = 200
UPCOMING = 5  # next fire times shown with a schedule


class Overlap(StrEnum):
    ALLOW = "allow"
    SKIP = "skip"
    CANCEL_PREVIOUS = "cancel_previous"


class CatchUp(StrEnum):
    NONE = "none"
    ONE = "one"


@dataclass(frozen=True, slots=True)
class Schedule:
    id: str
    name: str
    owner_id: str
    cron: str
    timezone: str
    job: JobDraft
    overlap: Overlap
    catch_up: CatchUp
    jitter_seconds: int
    paused: bool
    created_at: float
    updated_at: float
    last_tick: float  # every tick at or before this one is decided
    next_fire_at: float | None  # when the next tick is due (jitter included); None: paused

    @property
    def parsed(self) -> Cron:
        return Cron(self.cron, self.timezone)

    def upcoming(self, now: float, count: int = UPCOMING) -> list[float]:
        """The next ticks this schedule will fire for, none while paused."""
        if self.paused:
            return []
        return self.parsed.upcoming(max(now, self.last_tick), count)


@dataclass(frozen=True, slots=True)
class Tick:
    """What one pass decides for a schedule: move the cursor to ``tick`` and fire a
    job for each of ``fire`` (oldest first); ``skipped`` says why a due tick was not."""

    tick: float
    next_fire_at: float
    fire: tuple[float, ...] = ()
    skipped: str | None = None  # "missed" or "overlap"
    cancel_previous: bool = False


def validate(name: str, cron: str, timezone: str, jitter_seconds: int) -> Cron:
    """The checks a new or changed schedule must pass; the job is checked as a submit."""
    if not name.strip() or len(name) > MAX_NAME:
        raise InvalidInput(f"name must be 1-{MAX_NAME} characters", field="name")
    if not 0 <= jitter_seconds <= MAX_JITTER:
        raise InvalidInput(
            f"jitter_seconds must be between 0 and {MAX_JITTER}", field="jitter_seconds"
        )
    return Cron.parse(cron, timezone)


def jitter(schedule_id: str, tick: float, jitter_seconds: int) -> float:
    """A delay in [0, jitter_seconds) every replica computes alike for this tick."""
    if jitter_seconds <= 0:
        return 0.0
    digest = hashlib.sha256(f"{schedule_id}:{tick!r}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter_seconds


def due_after(schedule: Schedule, cursor: float) -> float | None:
    """When the first tick after ``cursor`` falls due; None while paused."""
    if schedule.paused:
        return None
    tick = schedule.parsed.next_after(cursor)
    return tick + jitter(schedule.id, tick, schedule.jitter_seconds)


def restart_from(schedule: Schedule, now: float) -> Schedule:
    """The schedule with its cursor moved to ``now`` (created, resumed, or given a new
    expression): ticks before that are not missed, they never belonged to it."""
    moved = replace(schedule, last_tick=max(now, schedule.last_tick), updated_at=now)
    return replace(moved, next_fire_at=due_after(moved, moved.last_tick))


def due_at(schedule: Schedule, tick: float) -> float:
    return tick + jitter(schedule.id, tick, schedule.jitter_seconds)


def newest_due(schedule: Schedule, now: float) -> float | None:
    """The newest tick after the cursor whose due time (tick + jitter) has come."""
    cron = schedule.parsed
    first = cron.next_after(schedule.last_tick)
    if due_at(schedule, first) > now:
        return None
    tick = cron.latest_at_or_before(now)
    for _ in range(3):  # jitter may put the newest tick's job after now: look back
        if tick <= first:
            break
        if due_at(schedule, tick) <= now:
            return tick
        tick = cron.before(tick)
    return first


def _latest_missed(schedule: Schedule, newest: float, on_time: bool, now: float) -> float | None:
    """The newest due tick that missed its time: ``newest`` itself when late, else the
    one before it, if that one is after the cursor and due."""
    if not on_time:
        return newest
    previous = schedule.parsed.before(newest)
    if previous <= schedule.last_tick or due_at(schedule, previous) > now:
        return None
    return previous


def decide(schedule: Schedule, now: float, busy: bool) -> Tick | None:
    """What to do at ``now``; None when no tick is due. ``busy``: an earlier job of
    this schedule is still pending or running."""
    if schedule.paused:
        return None
    newest = newest_due(schedule, now)
    if newest is None:
        return None
    following = due_after(schedule, newest)
    assert following is not None  # not paused
    on_time = now - due_at(schedule, newest) <= MISFIRE_GRACE
    missed = _latest_missed(schedule, newest, on_time, now)
    fire: list[float] = []
    if missed is not None and schedule.catch_up is CatchUp.ONE:
        fire.append(missed)  # one job stands for every tick the downtime swallowed
    if on_time:
        fire.append(newest)
    if not fire:
        return Tick(newest, following, skipped="missed")
    if busy and schedule.overlap is Overlap.SKIP:
        return Tick(newest, following, skipped="overlap")
    cancel = busy and schedule.overlap is Overlap.CANCEL_PREVIOUS
    return Tick(newest, following, tuple(fire), cancel_previous=cancel)
