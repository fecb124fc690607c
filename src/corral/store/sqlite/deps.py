"""Dependencies and workflows on SQLite: a mixin of ``SqliteStore``, plus the link step
``insert_jobs`` runs in its transaction. The single writer serialises a dependant's
insertion with its parents' ends, so the statuses read here cannot move under it."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from corral.domain.jobs import Job, NewJob
from corral.store.base import Dependencies, WorkflowRecord
from corral.store.deps_common import edges, in_order, parent_counts, settle_all
from corral.store.rows import JOB_COLUMNS, job_from_row
from corral.store.sqlite.engine import Readers, Writer

_SETTLE = (
    "UPDATE jobs SET status = ?, deps_left = ?, deps_bad = ?, finished_at = ?, "
    "error_message = ? WHERE id = ?"
)


def link(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: float) -> set[str]:
    """Record the edges of the inserted ``jobs`` and settle each dependant (in the order
    ``deps_common`` explains); return the ids whose stored state differs from
    ``NewJob.stored``."""
    order = in_order(jobs)
    if not order:
        return set()
    counts = parent_counts(order)
    found: dict[str, str] = {}
    ids = list(counts)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" for _ in chunk)
        rows = conn.execute(f"SELECT id, status FROM jobs WHERE id IN ({marks})", chunk)
        found.update((r[0], r[1]) for r in rows)
    settled = settle_all(order, found, now)
    conn.executemany(_SETTLE, [(*state.params(), job_id) for job_id, state in settled])
    conn.executemany("INSERT INTO job_deps (job_id, depends_on) VALUES (?, ?)", edges(order))
    conn.executemany(
        "UPDATE jobs SET dependants = dependants + ? WHERE id = ?",
        [(n, parent) for parent, n in counts.items()],
    )
    return {job_id for job_id, _ in settled}


_CHUNK = 500  # ids per IN (...): well under SQLite's limit on bound parameters


class SqliteDependencies:
    _writer: Writer
    _readers: Readers

    async def get_dependencies(self, job_id: str) -> Dependencies:
        def op(conn: sqlite3.Connection) -> Dependencies:
            parents = conn.execute(
                "SELECT depends_on FROM job_deps WHERE job_id = ? ORDER BY depends_on",
                (job_id,),
            ).fetchall()
            children = conn.execute(
                "SELECT job_id FROM job_deps WHERE depends_on = ? ORDER BY job_id", (job_id,)
            ).fetchall()
            return Dependencies([r[0] for r in parents], [r[0] for r in children])

        return await self._readers.run(op)

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        def op(conn: sqlite3.Connection) -> WorkflowRecord | None:
            row = conn.execute(
                "SELECT id, name, owner_id, created_at, keys FROM workflows WHERE id = ?",
                (workflow_id,),
            ).fetchone()
            return _workflow(row) if row else None

        return await self._readers.run(op)

    async def list_workflows(self, limit: int, offset: int) -> list[WorkflowRecord]:
        def op(conn: sqlite3.Connection) -> list[WorkflowRecord]:
            rows = conn.execute(
                "SELECT id, name, owner_id, created_at, keys FROM workflows "
                "ORDER BY seq DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            return [_workflow(r) for r in rows]

        return await self._readers.run(op)

    async def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        def op(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT d.job_id, d.depends_on FROM jobs AS j "
                "JOIN job_deps AS d ON d.job_id = j.id WHERE j.workflow_id = ?",
                (workflow_id,),
            ).fetchall()
            return [(r[0], r[1]) for r in rows]

        return await self._readers.run(op)


def insert_workflow_row(conn: sqlite3.Connection, workflow: WorkflowRecord) -> None:
    conn.execute(
        "INSERT INTO workflows (id, name, owner_id, created_at, keys) VALUES (?, ?, ?, ?, ?)",
        (
            workflow.id,
            workflow.name,
            workflow.owner_id,
            workflow.created_at,
            orjson.dumps(workflow.keys).decode(),
        ),
    )


def reread(conn: sqlite3.Connection, ids: set[str]) -> dict[str, Job]:
    marks = ",".join("?" for _ in ids)
    rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", tuple(ids))
    return {r["id"]: job_from_row(r) for r in rows}


def _workflow(row: sqlite3.Row) -> WorkflowRecord:
    return WorkflowRecord(row[0], row[1], row[2], row[3], orjson.loads(row[4]))
