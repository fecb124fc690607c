"""Flow control on PostgreSQL: concurrency-key admission at insert and the locks that
keep it atomic across replicas, and what the dashboard and ``pending_reason`` read.

Fair-share turns need no code here: ``postgres.sql.INSERT_JOBS`` computes them in the
insert itself. Admission is migration 0021's ``corral_admit``, run under a per-key
advisory lock; the triggers run it whenever a slot frees. A transaction that ends or
inserts jobs of several keys takes their locks first, in hash order, so that two such
transactions can never each hold a key the other waits for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from corral.domain.concurrency import KeyUsage
from corral.domain.jobs import Job, NewJob
from corral.store.postgres import sql as q

# Migration 0021's ``corral_admit`` for each key, in the locks' order.
ADMIT_KEYS = (
    "SELECT count(corral_admit(k)) FROM "
    "(SELECT k FROM unnest($1::text[]) AS u(k) GROUP BY k ORDER BY hashtext(k)) AS s"
)
# What the dashboard and ``pending_reason`` read: each key's slots taken, its held jobs
# and the limit of the one admitted next.
KEY_SLOTS = (
    "SELECT concurrency_key, status, count(*) FROM jobs "
    "WHERE status IN ('pending', 'running') AND concurrency_key = ANY($1::text[]) "
    "GROUP BY 1, 2"
)
KEY_HELD = """
SELECT h.key, h.n, (SELECT concurrency_limit FROM jobs
    WHERE status = 'held' AND concurrency_key = h.key
    ORDER BY priority DESC, turn, seq LIMIT 1) AS next_limit
FROM (SELECT concurrency_key AS key, count(*) AS n FROM jobs
      WHERE status = 'held' AND concurrency_key = ANY($1::text[]) GROUP BY 1) AS h
"""
MOST_HELD = (
    "SELECT concurrency_key, count(*) AS n FROM jobs WHERE status = 'held' "
    "GROUP BY concurrency_key ORDER BY n DESC, concurrency_key LIMIT $1"
)


def keys_of(jobs: Iterable[NewJob | Job]) -> list[str]:
    """The distinct concurrency keys of ``jobs``, sorted."""
    return sorted({j.spec.concurrency_key for j in jobs if j.spec.concurrency_key is not None})


async def lock_keys(conn: Any, keys: Sequence[str]) -> None:
    """Take the admission locks of several keys in the one order (none: no round trip)."""
    if len(keys) > 1:
        await conn.execute(q.LOCK_KEYS, list(keys))


async def admit_new(conn: Any, jobs: Sequence[NewJob]) -> list[str]:
    """Admit what fits of the keys of newly inserted held jobs, once the whole batch is
    in (its best jobs go first); the ids of the jobs inserted held, to read back."""
    held = [j for j in jobs if j.spec.concurrency_key is not None and not j.depends_on]
    if held:
        await conn.execute(ADMIT_KEYS, keys_of(held))
    return [j.id for j in held]


class PostgresFlow:
    """The ``Store`` operations on concurrency keys, mixed into ``PostgresStore``."""

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # PostgresStore's

    async def key_usage(self, keys: Sequence[str]) -> dict[str, KeyUsage]:
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        found: dict[str, dict[str, Any]] = {k: {"key": k} for k in wanted}
        for key, status, n in await self._fetch(KEY_SLOTS, wanted):
            found[key]["running" if status == "running" else "queued"] = int(n)
        for key, n, limit in await self._fetch(KEY_HELD, wanted):
            found[key].update(held=int(n), limit=limit)
        return {key: KeyUsage(**fields) for key, fields in found.items()}

    async def held_keys(self, limit: int) -> list[KeyUsage]:
        keys = [row[0] for row in await self._fetch(MOST_HELD, limit)]
        found = await self.key_usage(keys)
        return [found[k] for k in keys]
