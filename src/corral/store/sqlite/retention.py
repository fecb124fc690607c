"""Retention on SQLite: the purge's batches, forgetting executors, giving space back.

A batch is one op of the single writer, so it runs between other requests' ops and
holds the writer for a few milliseconds only: the purge's pace is set by the
service (``services.retention``), which pauses between batches.

Space: a deleted row's pages go to SQLite's free list and are reused by later
writes, so with a steady purge the file stops growing. To give pages back to the
file system the database needs ``auto_vacuum=INCREMENTAL``, which can only be set
before the first table exists (``create_incremental``, for new databases) or by a
``VACUUM`` that rewrites the file (``convert_small``, at start for small existing
databases; ``corral prune --vacuum`` for any).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from corral.domain.retention import PruneCursor, RetentionRule, next_cursor, plan
from corral.store import retention_common as rc
from corral.store.retention_port import PruneBatch, Pruned
from corral.store.sqlite.engine import Readers, Writer, connect

log = logging.getLogger(__name__)
T = TypeVar("T")

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
CONVERT_BELOW = 64 << 20  # existing databases smaller than this are converted at start
# Free pages kept for reuse rather than given back, as a share of the file: a steady
# purge frees about what the next inserts need, so giving that back only to grow the
# file again would be churn; a large one-off purge still shrinks the file to about this.
KEEP_FREE = 0.10
_CHUNK = 500  # ids per IN (...)
_WALKS = {
    stream: rc.walk_sql(stream, lambda name: f":{name}", indexed_by=True) for stream in rc.KEYS
}


def create_incremental(path: Path) -> None:
    """Make a new, empty database file with incremental vacuum on: it must be set
    before WAL mode or any table is, or it silently stays off."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def convert_small(path: Path) -> None:
    """Turn incremental vacuum on for an existing database small enough to rewrite in
    well under a second; a larger one says how to do it (it stays correct without:
    freed pages are reused, only not given back)."""
    conn = connect(path)
    try:
        if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == INCREMENTAL:
            return
        if path.stat().st_size >= CONVERT_BELOW:
            log.warning(
                "this SQLite database gives no space back to the file system; run "
                "`corral prune --vacuum` once, at a quiet time, to turn that on",
                extra={"action": "sqlite_vacuum_advised", "path": str(path)},
            )
            return
        vacuum(conn)
    except sqlite3.OperationalError as exc:  # busy: another process has it open
        log.warning("SQLite vacuum skipped: %s", exc, extra={"action": "sqlite_vacuum_skipped"})
    finally:
        conn.close()


def vacuum(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("VACUUM")


def _marks(ids: Sequence[object]) -> str:
    return f"IN ({', '.join('?' for _ in ids)})"


def _chunks(ids: Sequence[T]) -> list[Sequence[T]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _select(conn: sqlite3.Connection, sql: str, ids: Sequence[str]) -> list[Any]:
    rows: list[Any] = []
    for chunk in _chunks(ids):
        rows.extend(conn.execute(sql.format(ids=_marks(chunk)), tuple(chunk)).fetchall())
    return rows


def batch(
    conn: sqlite3.Connection,
    rule: RetentionRule,
    cursor: PruneCursor,
    limit: int,
    dry_run: bool,
    decided: set[str],
) -> PruneBatch:
    """Walk, judge, delete: one batch inside the caller's transaction."""
    params = {
        "cutoff": rc.cutoff(rule, cursor.stream),
        "key": cursor.key,
        "seq": cursor.seq,
        "limit": limit,
    }
    walked = conn.execute(_WALKS[cursor.stream], params).fetchall()
    candidates = [rc.finished(row, with_key=True) for row in walked]
    workflows = sorted({c.workflow_id for c in candidates if c.workflow_id} - decided)
    members = [rc.finished(r) for r in _select(conn, rc.MEMBERS_SQL, workflows)]
    checked = [c.id for c in candidates if c.workflow_id is None] + [m.id for m in members]
    held = {r[0] for r in _select(conn, rc.HELD_SQL, checked)}
    chosen = plan(candidates, members, held, rule, decided, limit)
    if dry_run:
        pruned = Pruned(jobs=len(chosen.job_ids))
    else:
        pruned = delete(conn, chosen.job_seqs, chosen.workflow_ids)
    return PruneBatch(pruned, next_cursor(cursor, chosen))


def delete(conn: sqlite3.Connection, seqs: Sequence[int], workflow_ids: Sequence[str]) -> Pruned:
    """Delete the finished jobs ``seqs`` with all that hangs off them, and the workflows
    among ``workflow_ids`` left empty: the purge's batches and ``delete_job`` alike."""
    counts = dict.fromkeys(Pruned().counts(), 0)
    for chunk in _chunks(seqs):
        gone = [r[0] for r in conn.execute(rc.DELETE_JOBS_SQL.format(ids=_marks(chunk)), chunk)]
        counts["jobs"] += len(gone)
        if not gone:
            continue
        for name, sql in rc.DELETE_CHILDREN_SQL:
            deleted = conn.execute(sql.format(ids=_marks(gone)), gone).rowcount
            if name is not None:
                counts[name] += deleted
    for ids in _chunks(workflow_ids):
        counts["workflows"] += conn.execute(
            rc.DELETE_WORKFLOWS_SQL.format(ids=_marks(ids)), ids
        ).rowcount
    return Pruned(**counts)


class SqliteRetention:
    """The retention half of ``SqliteStore``."""

    _writer: Writer
    _readers: Readers
    path: Path

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
        """``wait`` has nothing to wait for: the writer already lets one op in at a time,
        and another process's writes wait for the file lock."""
        judged = set() if decided is None else decided

        def op(conn: sqlite3.Connection) -> PruneBatch:
            return batch(conn, rule, cursor, limit, dry_run, judged)

        if dry_run:  # reads only: off the writer, on a reader thread
            return await self._readers.run(op)
        done: PruneBatch = await self._writer.submit(op)
        return done

    async def prune_executors(self, offline_before: float) -> int:
        sql = rc.DELETE_EXECUTORS_SQL.format(mark="?")
        count: int = await self._writer.submit(
            lambda conn: conn.execute(sql, (offline_before,)).rowcount
        )
        return count

    async def reclaim_space(self, max_pages: int) -> int:
        """Free pages past ``KEEP_FREE`` of the file go back, at most ``max_pages``.

        Each ``PRAGMA incremental_vacuum`` statement frees one page per step, and
        Python's driver steps it once: one statement per page, inside one op."""

        def op(conn: sqlite3.Connection) -> int:
            if conn.execute("PRAGMA auto_vacuum").fetchone()[0] != INCREMENTAL:
                return 0
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
            for _ in range(min(free - int(pages * KEEP_FREE), max_pages)):
                conn.execute("PRAGMA incremental_vacuum(1)")
            left = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
            return (free - left) * int(conn.execute("PRAGMA page_size").fetchone()[0])

        given: int = await self._writer.submit(op)
        return given

    async def compact(self) -> None:
        """A whole-file rewrite: other writers wait meanwhile, so only by hand."""
        await self._writer.flush()

        def run() -> None:
            conn = connect(self.path)
            try:
                vacuum(conn)
            finally:
                conn.close()

        await asyncio.to_thread(run)
