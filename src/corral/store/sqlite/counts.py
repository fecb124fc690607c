"""Shared counts on SQLite: the same tables and answers as ``postgres.counts``.

With SQLite's one process the rate limits stay in memory, so only the contract
tests take windows here; the dashboard's activity slots are written once a second
at most, one short write each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from corral.store.counts_port import ALL_TIME
from corral.store.sqlite.engine import Readers, Writer

_ADD_TO_WINDOW = """
INSERT INTO rate_windows (budget, key, window_start, used, expires_at)
VALUES (?1, ?2, ?3, max(?4, 0), ?5)
ON CONFLICT (budget, key, window_start) DO UPDATE SET used = max(rate_windows.used + ?4, 0)
RETURNING used
"""
_WINDOW_COUNT = "SELECT used FROM rate_windows WHERE budget = ? AND key = ? AND window_start = ?"
_FORGET_WINDOWS = """
DELETE FROM rate_windows WHERE rowid IN (
  SELECT rowid FROM rate_windows WHERE expires_at < ? LIMIT ?)
"""
_ADD_ACTIVITY = """
INSERT INTO activity (slot, name, count) VALUES (?, ?, ?)
ON CONFLICT (slot, name) DO UPDATE SET count = activity.count + excluded.count
"""
_READ_ACTIVITY = "SELECT slot, name, count FROM activity WHERE slot >= ? OR slot = ?"
_FORGET_ACTIVITY = "DELETE FROM activity WHERE slot < ? AND slot <> ?"


class SqliteCounts:
    _writer: Writer
    _readers: Readers

    async def add_to_window(
        self, budget: str, key: str, window_start: int, amount: int, expires_at: float
    ) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                _ADD_TO_WINDOW, (budget, key, window_start, amount, expires_at)
            ).fetchone()
            return int(row[0])

        used: int = await self._writer.submit(op)
        return used

    async def window_count(self, budget: str, key: str, window_start: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(_WINDOW_COUNT, (budget, key, window_start)).fetchone()
            return int(row[0]) if row else 0

        return await self._readers.run(op)

    async def forget_windows(self, now: float, limit: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(_FORGET_WINDOWS, (now, limit)).rowcount

        deleted: int = await self._writer.submit(op)
        return deleted

    async def add_activity(self, slot: int, counts: Mapping[str, int]) -> None:
        rows = [(s, name, n) for s in (ALL_TIME, slot) for name, n in sorted(counts.items()) if n]
        if not rows:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(_ADD_ACTIVITY, rows)

        await self._writer.submit(op)

    async def read_activity(self, since_slot: int) -> list[tuple[int, str, int]]:
        def op(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
            rows = conn.execute(_READ_ACTIVITY, (since_slot, ALL_TIME)).fetchall()
            return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

        return await self._readers.run(op)

    async def forget_activity(self, before_slot: int) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(_FORGET_ACTIVITY, (before_slot, ALL_TIME)).rowcount

        deleted: int = await self._writer.submit(op)
        return deleted
