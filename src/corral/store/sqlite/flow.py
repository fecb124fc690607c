"""Flow control on SQLite: fair-share turns and concurrency-key admission at insert, and
what the dashboard and ``pending_reason`` read about keys.

Everything here runs in the single writer's transaction (inserts) or on a reader
(usage), so a turn or an admission is decided on a state nobody else can move
meanwhile. The rules are in ``domain/fairness.py`` and ``domain/concurrency.py``;
the triggers of migration 0021 admit held jobs when a slot frees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from corral.domain import fairness
from corral.domain.concurrency import KeyUsage
from corral.domain.jobs import NewJob
from corral.store.rows import JOB_INSERT_COLUMNS, new_job_params
from corral.store.sqlite.engine import Readers

INSERT_COLUMNS = (*JOB_INSERT_COLUMNS, "turn")
# The turn being served at a priority: the first due pending job's (jobs_queue's order).
_HEAD = (
    "SELECT turn FROM jobs INDEXED BY jobs_queue "
    "WHERE status = 'pending' AND priority = ? AND run_after <= ? "
    "ORDER BY priority DESC, turn, seq LIMIT 1"
)
# An owner's last pending turn at a priority.
_LAST = (
    "SELECT turn FROM jobs INDEXED BY jobs_share "
    "WHERE status = 'pending' AND share_id = ? AND priority = ? ORDER BY turn DESC LIMIT 1"
)
# Migration 0021's trigger body, for one key (:key): admit the best held jobs while the
# first one's limit leaves room.
ADMIT = """
UPDATE jobs SET status = 'pending' WHERE status = 'held' AND seq IN (
  SELECT seq FROM jobs INDEXED BY jobs_held
  WHERE status = 'held' AND concurrency_key = :key
  ORDER BY priority DESC, turn, seq
  LIMIT max(0, coalesce((
      SELECT concurrency_limit FROM jobs INDEXED BY jobs_held
      WHERE status = 'held' AND concurrency_key = :key
      ORDER BY priority DESC, turn, seq LIMIT 1), 0)
    - (SELECT count(*) FROM jobs INDEXED BY jobs_key_slots
       WHERE status IN ('pending', 'running') AND concurrency_key = :key)))
"""
_SLOTS = (
    "SELECT concurrency_key, status, count(*) FROM jobs INDEXED BY jobs_key_slots "
    "WHERE status IN ('pending', 'running') AND concurrency_key IN ({marks}) GROUP BY 1, 2"
)
_HELD = (
    "SELECT concurrency_key, count(*) FROM jobs INDEXED BY jobs_held "
    "WHERE status = 'held' AND concurrency_key IN ({marks}) GROUP BY 1"
)
_NEXT_LIMIT = (
    "SELECT concurrency_limit FROM jobs INDEXED BY jobs_held "
    "WHERE status = 'held' AND concurrency_key = ? ORDER BY priority DESC, turn, seq LIMIT 1"
)
_MOST_HELD = (
    "SELECT concurrency_key, count(*) AS n FROM jobs INDEXED BY jobs_held "
    "WHERE status = 'held' GROUP BY concurrency_key ORDER BY n DESC, concurrency_key LIMIT ?"
)


def insert_params(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> list[Any]:
    """Each job's insert parameters (``INSERT_COLUMNS``), with its fair-share turn."""
    bases: dict[tuple[str, int], int] = {}
    heads: dict[int, int | None] = {}
    for share, priority in dict.fromkeys((j.share, j.priority) for j in jobs):
        if priority not in heads:
            row = conn.execute(_HEAD, (priority, now)).fetchone()
            heads[priority] = row[0] if row else None
        last = conn.execute(_LAST, (share, priority)).fetchone()
        bases[share, priority] = fairness.first_turn(heads[priority], last[0] if last else None)
    turns = fairness.turns(((j.share, j.priority) for j in jobs), bases)
    return [(*new_job_params(job), turn) for job, turn in zip(jobs, turns, strict=True)]


def admit_new(conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> set[str]:
    """Admit what fits of the keys of newly inserted held jobs, once the whole batch is
    in (so its best jobs go first); the ids of the jobs inserted held."""
    held = [j for j in jobs if j.spec.concurrency_key is not None and not j.depends_on]
    for key in sorted({j.spec.concurrency_key for j in held if j.spec.concurrency_key}):
        conn.execute(ADMIT, {"key": key})
    return {j.id for j in held}


def usage(conn: sqlite3.Connection, keys: Sequence[str]) -> dict[str, KeyUsage]:
    """Running, queued and held counts of each key (every key given gets an entry)."""
    found: dict[str, dict[str, Any]] = {k: {"key": k} for k in keys}
    for start in range(0, len(keys), _CHUNK):
        chunk = list(keys[start : start + _CHUNK])
        marks = ",".join("?" for _ in chunk)
        for key, status, n in conn.execute(_SLOTS.format(marks=marks), chunk):
            found[key]["running" if status == "running" else "queued"] = n
        for key, n in conn.execute(_HELD.format(marks=marks), chunk):
            found[key]["held"] = n
            found[key]["limit"] = conn.execute(_NEXT_LIMIT, (key,)).fetchone()[0]
    return {key: KeyUsage(**fields) for key, fields in found.items()}


_CHUNK = 500  # keys per IN (...): well under SQLite's limit on bound parameters


class SqliteFlow:
    """The ``Store`` operations on concurrency keys, mixed into ``SqliteStore``."""

    _readers: Readers

    async def key_usage(self, keys: Sequence[str]) -> dict[str, KeyUsage]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        return await self._readers.run(lambda conn: usage(conn, wanted))

    async def held_keys(self, limit: int) -> list[KeyUsage]:
        def op(conn: sqlite3.Connection) -> list[KeyUsage]:
            keys = [row[0] for row in conn.execute(_MOST_HELD, (limit,))]
            found = usage(conn, keys)
            return [found[k] for k in keys]

        return await self._readers.run(op)
