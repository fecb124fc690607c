"""Schedules on PostgreSQL: the schedule half of ``PostgresStore``.

Replicas race for each tick. The cursor's compare-and-set (``UPDATE ... WHERE
last_tick = $cursor``) lets one transaction through: the others wait on its row
lock, then find the cursor moved and change nothing. The job's insert runs in the
same transaction, and the unique index on (schedule_id, scheduled_for) refuses a
second job for a tick whatever path it came by.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg

from corral.domain.jobs import Job, NewJob
from corral.domain.schedules import Schedule, Tick
from corral.errors import AlreadyExists, NotFound
from corral.store.postgres import flow, retry
from corral.store.postgres import sql as q
from corral.store.rows import JOB_COLUMNS, job_from_row, new_job_params
from corral.store.schedules_common import (
    SCHEDULE_COLUMNS,
    SCHEDULE_FIELDS,
    schedule_from_row,
    schedule_params,
)

_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
_MUTABLE = [c for c in SCHEDULE_FIELDS if c not in ("id", "owner_id", "created_at")]
_UPDATE = (
    f"UPDATE schedules SET {', '.join(f'{c} = ${i + 3}' for i, c in enumerate(_MUTABLE))} "
    "WHERE id = $1 AND last_tick = $2"
)
# A tick that already has its job keeps that one (the unique key on schedule and tick).
_INSERT_FIRED = q.INSERT_JOBS.replace(" RETURNING ", " ON CONFLICT DO NOTHING RETURNING ")
assert "ON CONFLICT" in _INSERT_FIRED, "INSERT_JOBS no longer ends in RETURNING"
T = TypeVar("T")
_MOVE_CURSOR = (
    "UPDATE schedules SET last_tick = $1, next_fire_at = $2 "
    "WHERE id = $3 AND last_tick = $4 AND paused = 0"
)


class PostgresSchedules:
    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def _in_tx(self, work: retry.Work[T], *, one_statement: bool = False) -> T:
        raise NotImplementedError

    async def create_schedule(self, schedule: Schedule) -> None:
        marks = ", ".join(f"${i + 1}" for i in range(len(SCHEDULE_FIELDS)))
        try:
            async with self._conn() as conn:
                await conn.execute(
                    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({marks})",
                    *schedule_params(schedule),
                )
        except asyncpg.UniqueViolationError:
            raise AlreadyExists("schedule already exists", schedule_id=schedule.id) from None

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE id = $1", schedule_id)
        return schedule_from_row(row) if row else None

    async def list_schedules(self) -> list[Schedule]:
        async with self._conn() as conn:
            rows = await conn.fetch(f"{_SELECT} ORDER BY created_at, id")
        return [schedule_from_row(r) for r in rows]

    async def update_schedule(self, schedule: Schedule, cursor: float) -> bool:
        values = dict(zip(SCHEDULE_FIELDS, schedule_params(schedule), strict=True))
        mutable = (values[c] for c in _MUTABLE)
        async with self._conn() as conn:
            status = await conn.execute(_UPDATE, schedule.id, cursor, *mutable)
            if not status.endswith(" 0"):
                return True
            if await conn.fetchval("SELECT 1 FROM schedules WHERE id = $1", schedule.id):
                return False
        raise NotFound("schedule not found", schedule_id=schedule.id)

    async def delete_schedule(self, schedule_id: str) -> None:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM schedules WHERE id = $1", schedule_id)
        if status.endswith(" 0"):
            raise NotFound("schedule not found", schedule_id=schedule_id)

    async def due_schedules(self, now: float) -> list[Schedule]:
        sql = (
            f"{_SELECT} WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1 ORDER BY next_fire_at"
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, now)
        return [schedule_from_row(r) for r in rows]

    async def next_schedule_due(self) -> float | None:
        async with self._conn() as conn:
            due = await conn.fetchval(
                "SELECT min(next_fire_at) FROM schedules WHERE next_fire_at IS NOT NULL"
            )
        return float(due) if due is not None else None

    async def fire_schedule(
        self, schedule_id: str, cursor: float, tick: Tick, jobs: Sequence[NewJob]
    ) -> bool:

        async def fire(conn: Any) -> bool:
            status = await conn.execute(
                _MOVE_CURSOR, tick.tick, tick.next_fire_at, schedule_id, cursor
            )
            if status.endswith(" 0"):
                return False
            if jobs:
                params = (new_job_params(j) for j in jobs)
                await conn.fetch(_INSERT_FIRED, *(list(c) for c in zip(*params, strict=True)))
                await flow.admit_new(conn, jobs)  # takes key locks: retried, as every admission
                await conn.execute(q.NOTIFY, "jobs")  # claimers on every replica look
            return True

        return await self._in_tx(fire)

    async def schedule_jobs(
        self, schedule_id: str, limit: int, unfinished: bool = False
    ) -> list[Job]:
        status = "AND status IN ('pending', 'held', 'running') " if unfinished else ""
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE schedule_id = $1 {status}"
            "ORDER BY scheduled_for DESC LIMIT $2"
        )
        async with self._conn() as conn:
            rows = await conn.fetch(sql, schedule_id, limit)
        return [job_from_row(r) for r in rows]
