"""Schedules on SQLite: the schedule half of ``SqliteStore``.

Deciding a tick is one write: the cursor's compare-and-set and the job's insert
run in the writer's transaction, so they land together or not at all. Two
processes on one file (never done in production, done by the contract tests)
still get one job per tick: ``BEGIN IMMEDIATE`` serialises them and the loser's
compare-and-set changes no row.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from corral.domain.jobs import Job, NewJob
from corral.domain.schedules import Schedule, Tick
from corral.errors import AlreadyExists, NotFound
from corral.store.rows import JOB_COLUMNS, job_from_row
from corral.store.schedules_common import (
    SCHEDULE_COLUMNS,
    SCHEDULE_FIELDS,
    schedule_from_row,
    schedule_params,
)
from corral.store.sqlite import flow
from corral.store.sqlite.engine import Readers, Writer

# OR IGNORE: a tick that already has its job keeps that one (the unique key on
# schedule and tick); job ids are fresh UUIDs, so nothing else can collide.
_INSERT_JOB = (
    f"INSERT OR IGNORE INTO jobs ({', '.join(flow.INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in flow.INSERT_COLUMNS)})"
)
_SELECT = f"SELECT {SCHEDULE_COLUMNS} FROM schedules"
_MUTABLE = [c for c in SCHEDULE_FIELDS if c not in ("id", "owner_id", "created_at")]
_UPDATE = (
    f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in _MUTABLE)} WHERE id = ? AND last_tick = ?"
)
_MOVE_CURSOR = (
    "UPDATE schedules SET last_tick = ?, next_fire_at = ? "
    "WHERE id = ? AND last_tick = ? AND paused = 0"
)


class SqliteSchedules:
    _writer: Writer
    _readers: Readers

    async def create_schedule(self, schedule: Schedule) -> None:
        marks = ", ".join("?" for _ in SCHEDULE_FIELDS)

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    f"INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES ({marks})",
                    schedule_params(schedule),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("schedule already exists", schedule_id=schedule.id) from None

        await self._writer.submit(op)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        rows = await self._read(f"{_SELECT} WHERE id = ?", (schedule_id,))
        return schedule_from_row(rows[0]) if rows else None

    async def list_schedules(self) -> list[Schedule]:
        rows = await self._read(f"{_SELECT} ORDER BY created_at, id", ())
        return [schedule_from_row(r) for r in rows]

    async def update_schedule(self, schedule: Schedule, cursor: float) -> bool:
        values = dict(zip(SCHEDULE_FIELDS, schedule_params(schedule), strict=True))
        params = (*(values[c] for c in _MUTABLE), schedule.id, cursor)

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(_UPDATE, params).rowcount == 1:
                return True
            if conn.execute("SELECT 1 FROM schedules WHERE id = ?", (schedule.id,)).fetchone():
                return False
            raise NotFound("schedule not found", schedule_id=schedule.id)

        updated: bool = await self._writer.submit(op)
        return updated

    async def delete_schedule(self, schedule_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 0:
                raise NotFound("schedule not found", schedule_id=schedule_id)

        await self._writer.submit(op)

    async def due_schedules(self, now: float) -> list[Schedule]:
        sql = (
            f"{_SELECT} WHERE next_fire_at IS NOT NULL AND next_fire_at <= ? ORDER BY next_fire_at"
        )
        return [schedule_from_row(r) for r in await self._read(sql, (now,))]

    async def next_schedule_due(self) -> float | None:
        rows = await self._read(
            "SELECT min(next_fire_at) AS due FROM schedules WHERE next_fire_at IS NOT NULL", ()
        )
        due = rows[0]["due"] if rows else None
        return float(due) if due is not None else None

    async def fire_schedule(
        self, schedule_id: str, cursor: float, tick: Tick, jobs: Sequence[NewJob]
    ) -> bool:
        move = (tick.tick, tick.next_fire_at, schedule_id, cursor)

        def op(conn: sqlite3.Connection) -> bool:
            if conn.execute(_MOVE_CURSOR, move).rowcount != 1:
                return False
            now = max((j.created_at for j in jobs), default=tick.tick)
            conn.executemany(_INSERT_JOB, flow.insert_params(conn, jobs, now))
            flow.admit_new(conn, jobs)
            return True

        won: bool = await self._writer.submit(op)
        return won

    async def schedule_jobs(
        self, schedule_id: str, limit: int, unfinished: bool = False
    ) -> list[Job]:
        # INDEXED BY: without statistics the planner would walk the whole history.
        index, status = "jobs_schedule_tick", ""
        if unfinished:
            index = "jobs_schedule_unfinished"
            status = "AND status IN ('pending', 'held', 'running') "
        sql = (
            f"SELECT {JOB_COLUMNS} FROM jobs INDEXED BY {index} WHERE schedule_id = ? {status}"
            "ORDER BY scheduled_for DESC LIMIT ?"
        )
        return [job_from_row(r) for r in await self._read(sql, (schedule_id, limit))]

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        def op(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        return await self._readers.run(op)
