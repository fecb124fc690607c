"""Flow control on PostgreSQL: concurrency-key admission at insert and the locks that
keep it atomic across replicas, and what the dashboard and ``pending_reason`` read.

Fair-share turns need no code here: ``postgres_sql.INSERT_JOBS`` computes them in the
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
from corral.store import postgres_sql as q


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
        await conn.execute(q.ADMIT_KEYS, keys_of(held))
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
        for key, status, n in await self._fetch(q.KEY_SLOTS, wanted):
            found[key]["running" if status == "running" else "queued"] = int(n)
        for key, n, limit in await self._fetch(q.KEY_HELD, wanted):
            found[key].update(held=int(n), limit=limit)
        return {key: KeyUsage(**fields) for key, fields in found.items()}

    async def held_keys(self, limit: int) -> list[KeyUsage]:
        keys = [row[0] for row in await self._fetch(q.MOST_HELD, limit)]
        found = await self.key_usage(keys)
        return [found[k] for k in keys]
