"""Shared counts on PostgreSQL: rate-limit windows and the dashboard's activity slots.

Each write is one statement, an UPSERT that adds (``used + $n``), so two replicas
counting at once both land, serialised by the row lock for a moment. ``rate_windows``
is UNLOGGED (no WAL, no fsync on commit): losing it in a crash only opens a fresh
window, while a take stays a cheap round trip on the rate limits' path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from corral.store.counts_port import ALL_TIME

_ADD_TO_WINDOW = """
INSERT INTO rate_windows (budget, key, window_start, used, expires_at)
VALUES ($1, $2, $3, GREATEST($4::bigint, 0), $5)
ON CONFLICT (budget, key, window_start)
DO UPDATE SET used = GREATEST(rate_windows.used + $4::bigint, 0)
RETURNING used
"""
_WINDOW_COUNT = "SELECT used FROM rate_windows WHERE budget = $1 AND key = $2 AND window_start = $3"
# SKIP LOCKED: replicas sweeping at once take different rows, never wait on a take.
_FORGET_WINDOWS = """
DELETE FROM rate_windows WHERE ctid IN (
  SELECT ctid FROM rate_windows WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
"""
# Rows in name order: two replicas adding to one slot lock its rows in the same order,
# so they queue rather than deadlock.
_ADD_ACTIVITY = """
INSERT INTO activity (slot, name, count)
SELECT s, n, c FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS t (s, n, c)
ORDER BY s, n
ON CONFLICT (slot, name) DO UPDATE SET count = activity.count + EXCLUDED.count
"""
_READ_ACTIVITY = "SELECT slot, name, count FROM activity WHERE slot >= $1 OR slot = $2"
_FORGET_ACTIVITY = "DELETE FROM activity WHERE slot < $1 AND slot <> $2"


def _deleted(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"


class PostgresCounts:
    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def add_to_window(
        self, budget: str, key: str, window_start: int, amount: int, expires_at: float
    ) -> int:
        async with self._conn() as conn:
            used = await conn.fetchval(
                _ADD_TO_WINDOW, budget, key, window_start, amount, expires_at
            )
        return int(used)

    async def window_count(self, budget: str, key: str, window_start: int) -> int:
        async with self._conn() as conn:
            used = await conn.fetchval(_WINDOW_COUNT, budget, key, window_start)
        return int(used or 0)

    async def forget_windows(self, now: float, limit: int) -> int:
        async with self._conn() as conn:
            return _deleted(await conn.execute(_FORGET_WINDOWS, now, limit))

    async def add_activity(self, slot: int, counts: Mapping[str, int]) -> None:
        names = sorted(name for name, count in counts.items() if count)
        if not names:
            return
        slots = [slot] * len(names) + [ALL_TIME] * len(names)
        values = [counts[name] for name in names] * 2
        async with self._conn() as conn:
            await conn.execute(_ADD_ACTIVITY, slots, names * 2, values)

    async def read_activity(self, since_slot: int) -> list[tuple[int, str, int]]:
        async with self._conn() as conn:
            rows = await conn.fetch(_READ_ACTIVITY, since_slot, ALL_TIME)
        return [(int(r[0]), str(r[1]), int(r[2])) for r in rows]

    async def forget_activity(self, before_slot: int) -> int:
        async with self._conn() as conn:
            return _deleted(await conn.execute(_FORGET_ACTIVITY, before_slot, ALL_TIME))
