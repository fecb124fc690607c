"""The schedule half of the storage port (``Store`` extends it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from corral.domain.jobs import Job, NewJob
from corral.domain.schedules import Schedule, Tick


class ScheduleStore(Protocol):
    """What the scheduler and the schedule routes need of a store."""

    async def create_schedule(self, schedule: Schedule) -> None: ...

    async def get_schedule(self, schedule_id: str) -> Schedule | None: ...

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, oldest first."""

    async def update_schedule(self, schedule: Schedule, cursor: float) -> bool:
        """Replace every field but id, owner and creation time, if the cursor is still
        at ``cursor``; False (nothing written) when a tick moved it meanwhile, so the
        caller re-reads and tries again. ``NotFound`` if gone."""

    async def delete_schedule(self, schedule_id: str) -> None:
        """``NotFound`` if gone; the jobs it fired stay, as history."""

    async def due_schedules(self, now: float) -> list[Schedule]:
        """Unpaused schedules whose next tick is due at ``now``."""

    async def next_schedule_due(self) -> float | None:
        """When the soonest unpaused schedule's next tick falls due, if any."""

    async def fire_schedule(
        self, schedule_id: str, cursor: float, tick: Tick, jobs: Sequence[NewJob]
    ) -> bool:
        """Decide one tick: move the cursor from ``cursor`` to ``tick.tick`` and insert
        every job of ``jobs``, all or nothing. False, with nothing written, when another
        replica decided the tick first (the cursor moved) or the schedule was paused
        or deleted meanwhile. A job whose tick already has one is not inserted (the
        unique key refuses it) while the cursor still moves past the tick."""

    async def schedule_jobs(
        self, schedule_id: str, limit: int, unfinished: bool = False
    ) -> list[Job]:
        """The schedule's latest fired jobs, newest tick first; ``unfinished``: only
        those pending or running."""
