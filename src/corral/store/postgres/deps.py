"""Dependencies and workflows on PostgreSQL: a mixin of ``PostgresStore``, plus the link
step ``insert_jobs`` runs in its transaction.

Linking locks the parents' rows (in id order, so two linkers cannot deadlock) while it
reads their statuses: a parent ending on another replica either commits first (and is
read as ended) or waits for this commit, and then its trigger sees the new edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.domain.jobs import Job, NewJob
from corral.store.base import Dependencies, WorkflowRecord
from corral.store.deps_common import edges, in_order, parent_counts, settle_all
from corral.store.rows import JOB_COLUMNS, job_from_row

_LOCK_PARENTS = "SELECT id, status FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
_SETTLE_ALL = """
UPDATE jobs SET status = u.status, deps_left = u.left_, deps_bad = u.bad,
  finished_at = u.finished_at, error_message = u.error_message
FROM unnest($1::text[], $2::int4[], $3::int4[], $4::float8[], $5::text[], $6::text[])
  AS u(status, left_, bad, finished_at, error_message, id)
WHERE jobs.id = u.id
"""
_EDGES = "INSERT INTO job_deps (job_id, depends_on) SELECT * FROM unnest($1::text[], $2::text[])"
_COUNT_DEPENDANTS = """
UPDATE jobs SET dependants = jobs.dependants + u.n
FROM unnest($1::text[], $2::int4[]) AS u(id, n) WHERE jobs.id = u.id
"""
_WORKFLOW = "SELECT id, name, owner_id, created_at, keys FROM workflows"


async def link(conn: Any, jobs: Sequence[NewJob], now: float) -> dict[str, Job]:
    """Record the edges of the inserted ``jobs`` and settle each dependant (in the order
    ``deps_common`` explains); return the dependants as stored now."""
    order = in_order(jobs)
    if not order:
        return {}
    counts = parent_counts(order)
    rows = await conn.fetch(_LOCK_PARENTS, list(counts))
    settled = settle_all(order, {r[0]: r[1] for r in rows}, now)
    await conn.execute(_SETTLE_ALL, *_columns([(*s.params(), i) for i, s in settled]))
    await conn.execute(_EDGES, *_columns(edges(order)))
    await conn.execute(_COUNT_DEPENDANTS, list(counts), list(counts.values()))
    ids = [job_id for job_id, _ in settled]
    rows = await conn.fetch(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[])", ids)
    return {r["id"]: job_from_row(r) for r in rows}


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column, for ``unnest``."""
    return [list(column) for column in zip(*rows, strict=True)]


async def insert_workflow_row(conn: Any, workflow: WorkflowRecord) -> None:
    await conn.execute(
        "INSERT INTO workflows (id, name, owner_id, created_at, keys) VALUES ($1, $2, $3, $4, $5)",
        workflow.id,
        workflow.name,
        workflow.owner_id,
        workflow.created_at,
        orjson.dumps(workflow.keys).decode(),
    )


class PostgresDependencies:
    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        raise NotImplementedError  # PostgresStore's

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        raise NotImplementedError  # PostgresStore's

    async def get_dependencies(self, job_id: str) -> Dependencies:
        parents = await self._fetch(
            "SELECT depends_on FROM job_deps WHERE job_id = $1 ORDER BY depends_on", job_id
        )
        children = await self._fetch(
            "SELECT job_id FROM job_deps WHERE depends_on = $1 ORDER BY job_id", job_id
        )
        return Dependencies([r[0] for r in parents], [r[0] for r in children])

    async def get_workflow(self, workflow_id: str) -> WorkflowRecord | None:
        row = await self._fetchrow(f"{_WORKFLOW} WHERE id = $1", workflow_id)
        return _workflow(row) if row else None

    async def list_workflows(self, limit: int, offset: int) -> list[WorkflowRecord]:
        rows = await self._fetch(f"{_WORKFLOW} ORDER BY seq DESC LIMIT $1 OFFSET $2", limit, offset)
        return [_workflow(r) for r in rows]

    async def workflow_edges(self, workflow_id: str) -> list[tuple[str, str]]:
        rows = await self._fetch(
            "SELECT d.job_id, d.depends_on FROM jobs AS j "
            "JOIN job_deps AS d ON d.job_id = j.id WHERE j.workflow_id = $1",
            workflow_id,
        )
        return [(r[0], r[1]) for r in rows]


def _workflow(row: Any) -> WorkflowRecord:
    return WorkflowRecord(row[0], row[1], row[2], float(row[3]), orjson.loads(row[4]))
