"""Retention on PostgreSQL: the purge's batches, one replica at a time.

Every batch is one short transaction that first takes a transaction-level advisory
lock (``RETENTION_LOCK``): a replica that finds it taken skips its turn (``busy``),
and ``corral prune`` waits for it, so two purges never interleave and the replicas
hand the work to each other between batches. ``lock_timeout`` bounds the wait on a
row some other transaction holds: such a batch gives up and the next pass retries.

Deleted rows leave dead tuples that autovacuum turns into reusable space; the files
do not shrink (docs/flow-control.md says what to tune).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from corral.domain.retention import PruneCursor, RetentionRule, next_cursor, plan
from corral.store import retention_common as rc
from corral.store.postgres import sql as q
from corral.store.retention_port import PruneBatch, Pruned

RETENTION_LOCK = 0x636F7272616D  # one more than the migrations' lock ("corral" + 1)
LOCK_TIMEOUT = "2s"
_IDS = "= ANY($1::text[])"
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
_MARKS = {"cutoff": "$1", "key": "$2", "seq": "$3", "limit": "$4"}
_WALKS = {
    stream: rc.walk_sql(stream, lambda name: _MARKS[name], indexed_by=False) for stream in rc.KEYS
}
# The purge's tables, for ``compact``: plain VACUUM, which takes no lock that blocks
# reads or writes (VACUUM FULL would, on each table for as long as it runs).
_TABLES = "jobs, attempts, job_output, files, file_chunks, idempotency_keys, job_deps, workflows"


def _ids(sql: str) -> str:
    return sql.format(ids=_IDS)


async def batch(
    conn: Any,
    rule: RetentionRule,
    cursor: PruneCursor,
    limit: int,
    dry_run: bool,
    decided: set[str],
) -> PruneBatch:
    """Walk, judge, delete: one batch inside the caller's transaction."""
    walked = await conn.fetch(
        _WALKS[cursor.stream], rc.cutoff(rule, cursor.stream), cursor.key, cursor.seq, limit
    )
    candidates = [rc.finished(row, with_key=True) for row in walked]
    workflows = sorted({c.workflow_id for c in candidates if c.workflow_id} - decided)
    members = []
    if workflows:
        members = [rc.finished(r) for r in await conn.fetch(_ids(rc.MEMBERS_SQL), workflows)]
    checked = [c.id for c in candidates if c.workflow_id is None] + [m.id for m in members]
    held = {r[0] for r in await conn.fetch(_ids(rc.HELD_SQL), checked)} if checked else set()
    chosen = plan(candidates, members, held, rule, decided, limit)
    if dry_run:
        pruned = Pruned(jobs=len(chosen.job_ids))
    else:
        pruned = await delete(conn, chosen.job_seqs, chosen.workflow_ids)
    return PruneBatch(pruned, next_cursor(cursor, chosen))


async def delete(conn: Any, seqs: Sequence[int], workflow_ids: Sequence[str]) -> Pruned:
    """Delete the finished jobs ``seqs`` with all that hangs off them, and the workflows
    among ``workflow_ids`` left empty: the purge's batches and ``delete_job`` alike."""
    if not seqs:
        return Pruned()
    sql = rc.DELETE_JOBS_SQL.format(ids="= ANY($1::int8[])")
    gone = [r[0] for r in await conn.fetch(sql, sorted(seqs))]
    counts = dict.fromkeys(Pruned().counts(), 0)
    counts["jobs"] = len(gone)
    if gone:
        for name, sql in rc.DELETE_CHILDREN_SQL:
            status: str = await conn.execute(_ids(sql), gone)
            if name is not None:
                counts[name] += int(status.rsplit(" ", 1)[-1])
    if workflow_ids:
        status = await conn.execute(_ids(rc.DELETE_WORKFLOWS_SQL), list(workflow_ids))
        counts["workflows"] = int(status.rsplit(" ", 1)[-1])
    return Pruned(**counts)


class PostgresRetention:
    """The retention half of ``PostgresStore``."""

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def prune_batch(
        self,
        rule: RetentionRule,
        cursor: PruneCursor,
        limit: int,
        *,
        dry_run: bool = False,
        wait: bool = False,
        decided: set[str] | None = None,
    ) -> PruneBatch:
        judged = set() if decided is None else decided
        try:
            async with self._tx() as conn:
                if wait:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", RETENTION_LOCK)
                elif not await conn.fetchval(_TRY_LOCK, RETENTION_LOCK):
                    return PruneBatch(Pruned(), cursor, busy=True)
                await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                return await batch(conn, rule, cursor, limit, dry_run, judged)
        except asyncpg.LockNotAvailableError:  # a row held elsewhere: this batch gives up
            return PruneBatch(Pruned(), cursor, busy=True)

    async def prune_executors(self, offline_before: float) -> int:
        async with self._conn() as conn:
            status: str = await conn.execute(
                rc.DELETE_EXECUTORS_SQL.format(mark="$1"), offline_before
            )
        return int(status.rsplit(" ", 1)[-1])

    async def reclaim_space(self, max_pages: int) -> int:
        return 0

    async def compact(self) -> None:
        async with self._conn() as conn:
            await conn.execute(f"VACUUM (ANALYZE) {_TABLES}", timeout=q.UNHURRIED)
