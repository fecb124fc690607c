"""TaskDriver's projects, task types and task edits on PostgreSQL: a mixin of ``PostgresStore``.

Task edits lock the job row (``FOR UPDATE``) before looking at its status, so a
claim on another replica either happens first (and the edit is refused) or
waits; the UNIQUE indexes settle names and duplicate tasks across replicas.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any, TypeVar

import asyncpg

from corral.domain.jobs import Job, JobSpec
from corral.domain.projects import Project, TaskType
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, InvalidTransition, NotFound
from corral.store.postgres import retention, retry
from corral.store.postgres import sql as q
from corral.store.projects_port import ProjectActivity
from corral.store.projects_rows import (
    PROJECT_COLUMNS,
    TASK_TYPE_COLUMNS,
    project_from_row,
    project_params,
    task_type_from_row,
    task_type_params,
)
from corral.store.rows import JOB_COLUMNS, job_from_row, job_status, labels_to_column, spec_to_json


def _insert(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _update(table: str, columns: tuple[str, ...], skip: tuple[str, ...]) -> str:
    kept = [c for c in columns if c not in skip]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(kept, start=1))
    return f"UPDATE {table} SET {sets} WHERE id = ${len(kept) + 1}"


_INSERT_PROJECT = _insert("projects", PROJECT_COLUMNS)
_UPDATE_PROJECT = _update("projects", PROJECT_COLUMNS, ("id", "created_at", "created_by"))
_INSERT_TYPE = _insert("task_types", TASK_TYPE_COLUMNS)
_UPDATE_TYPE = _update("task_types", TASK_TYPE_COLUMNS, ("id", "project_id", "created_at"))
_ACTIVITY = """
SELECT count(*) FILTER (WHERE status = 'completed'),
  count(*) FILTER (WHERE status = 'failed'),
  avg(finished_at - started_at) FILTER (WHERE status = 'completed' AND started_at IS NOT NULL)
FROM jobs WHERE project_id = $1 AND finished_at >= $2
"""
_UPDATE_SPEC = """
UPDATE jobs SET type = $1, runnable = $2, labels = nullif($3, '')::jsonb, spec = $4,
  dedupe_key = $5 WHERE seq = $6
"""


# A task deleted before it ended ends first, as cancelled: the dependencies trigger
# (migration 0019) then decides its dependants, and the purge's delete, which takes
# only finished jobs, takes it with everything that hangs off it.
_END_BEFORE_DELETE = "UPDATE jobs SET status = 'cancelled', finished_at = $1 WHERE seq = $2"
T = TypeVar("T")


class PostgresProjects:
    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def _in_tx(self, work: retry.Work[T], *, one_statement: bool = False) -> T:
        raise NotImplementedError

    # --- projects -----------------------------------------------------------------------
    async def create_project(self, project: Project) -> None:
        params = project_params(project)
        await self._execute_unique(_INSERT_PROJECT, params, "project name already exists")

    async def get_project(self, project_id: str) -> Project | None:
        async with self._conn() as conn:
            row = await conn.fetchrow("SELECT * FROM projects WHERE id = $1", project_id)
        return project_from_row(row) if row else None

    async def list_projects(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        where, params = ("WHERE status = $1", [status]) if status else ("", [])
        n = len(params)
        async with self._conn() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM projects {where}", *params)
            rows = await conn.fetch(
                f"SELECT * FROM projects {where} ORDER BY created_at, id "
                f"LIMIT ${n + 1} OFFSET ${n + 2}",
                *params,
                limit,
                offset,
            )
        return [project_from_row(r) for r in rows], int(total)

    async def update_project(self, project: Project) -> None:
        id_, _name, *rest = project_params(project)
        params = (project.name, *rest[:-3], project.updated_at, id_)  # created_* stay
        await self._execute_unique(
            _UPDATE_PROJECT, params, "project name already exists", must_exist="project"
        )

    async def delete_project(self, project_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM task_types WHERE project_id = $1", project_id)
            status = await conn.execute("DELETE FROM projects WHERE id = $1", project_id)
            if status.endswith(" 0"):
                raise NotFound("project not found", project_id=project_id)

    async def project_counts(self, project_ids: Sequence[str]) -> dict[str, dict[JobStatus, int]]:
        if not project_ids:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT project_id, status, count(*) FROM jobs "
                "WHERE project_id = ANY($1::text[]) GROUP BY project_id, status",
                list(project_ids),
            )
        counts: dict[str, dict[JobStatus, int]] = {pid: {} for pid in project_ids}
        for project_id, status, n in rows:
            per = counts[project_id]
            per[job_status(status)] = per.get(job_status(status), 0) + int(n)
        return counts

    async def project_activity(self, project_id: str, since: float) -> ProjectActivity:
        async with self._conn() as conn:
            agents = await conn.fetchval(
                "SELECT count(DISTINCT executor_id) FROM jobs "
                "WHERE project_id = $1 AND status = 'running'",
                project_id,
            )
            completed, failed, average = await conn.fetchrow(_ACTIVITY, project_id, since)
        mean = None if average is None else float(average)
        return ProjectActivity(int(agents), int(completed), int(failed), mean)

    # --- task types ---------------------------------------------------------------------
    async def create_task_type(self, task_type: TaskType) -> None:
        params = task_type_params(task_type)
        await self._execute_unique(_INSERT_TYPE, params, "task type name already exists")

    async def get_task_type(self, type_id: str) -> TaskType | None:
        async with self._conn() as conn:
            row = await conn.fetchrow("SELECT * FROM task_types WHERE id = $1", type_id)
        return task_type_from_row(row) if row else None

    async def list_task_types(self, project_id: str) -> list[TaskType]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT * FROM task_types WHERE project_id = $1 ORDER BY created_at, id",
                project_id,
            )
        return [task_type_from_row(r) for r in rows]

    async def update_task_type(self, task_type: TaskType) -> None:
        id_, _project, *rest = task_type_params(task_type)
        params = (*rest[:-2], task_type.updated_at, id_)
        await self._execute_unique(
            _UPDATE_TYPE, params, "task type name already exists", must_exist="task type"
        )

    async def delete_task_type(self, type_id: str) -> None:
        async with self._conn() as conn:
            status = await conn.execute("DELETE FROM task_types WHERE id = $1", type_id)
        if status.endswith(" 0"):
            raise NotFound("task type not found", type_id=type_id)

    # --- tasks --------------------------------------------------------------------------
    async def find_duplicates(self, project_id: str, keys: Sequence[str]) -> dict[str, Job]:
        if not keys:
            return {}
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS}, dedupe_key FROM jobs "
                "WHERE project_id = $1 AND dedupe_key = ANY($2::text[])",
                project_id,
                sorted(set(keys)),
            )
        return {r["dedupe_key"]: job_from_row(r) for r in rows}

    async def update_pending_job(
        self, job_id: str, spec: JobSpec, dedupe_key: str | None = None
    ) -> Job:
        labels = labels_to_column(spec.labels)
        async with self._tx() as conn:
            job = await q.job_or_404(conn, job_id, lock=True)
            if job.status != JobStatus.PENDING:
                raise InvalidTransition(
                    f"task is {job.status}; only a queued task can be changed", job_id=job_id
                )
            try:
                await conn.execute(
                    _UPDATE_SPEC,
                    spec.type,
                    spec.runnable_level,
                    labels,
                    spec_to_json(spec),
                    dedupe_key,
                    job.seq,
                )
            except asyncpg.UniqueViolationError:
                raise AlreadyExists("an identical task already exists", job_id=job_id) from None
        return dataclasses.replace(job, spec=spec)

    async def delete_job(self, job_id: str) -> None:
        async def delete(conn: Any) -> None:
            job = await q.job_or_404(conn, job_id, lock=True)
            if job.status == JobStatus.RUNNING:
                raise InvalidTransition("a running task cannot be deleted", job_id=job_id)
            if not job.terminal:  # ends it, so its dependants' triggers run: retried
                await conn.execute(_END_BEFORE_DELETE, time.time(), job.seq)
            workflows = [job.workflow_id] if job.workflow_id else []
            await retention.delete(conn, [job.seq], workflows)

        await self._in_tx(delete)

    # --- helpers ------------------------------------------------------------------------
    async def _execute_unique(
        self, sql: str, params: tuple[object, ...], taken: str, must_exist: str | None = None
    ) -> None:
        """One statement; a UNIQUE violation is ``AlreadyExists``, no row is ``NotFound``."""
        async with self._conn() as conn:
            try:
                status: str = await conn.execute(sql, *params)
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(taken, field="name") from None
        if must_exist and status.endswith(" 0"):
            raise NotFound(f"{must_exist} not found")
