"""TaskDriver's projects, task types and task edits on SQLite: a mixin of ``SqliteStore``.

Writes run on the single writer, so a check and the write it guards (a task
still pending, a name still free) happen in one transaction with nobody in
between; the UNIQUE indexes settle the rest.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Sequence

from corral.domain.jobs import Job, JobSpec
from corral.domain.projects import Project, TaskType
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, InvalidTransition, NotFound
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
from corral.store.sqlite import ops, retention
from corral.store.sqlite.engine import Readers, Writer


def _insert(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _update(table: str, columns: tuple[str, ...], skip: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = ?" for c in columns if c not in skip)
    return f"UPDATE {table} SET {sets} WHERE id = ?"


_INSERT_PROJECT = _insert("projects", PROJECT_COLUMNS)
_UPDATE_PROJECT = _update("projects", PROJECT_COLUMNS, ("id", "created_at", "created_by"))
_INSERT_TYPE = _insert("task_types", TASK_TYPE_COLUMNS)
_UPDATE_TYPE = _update("task_types", TASK_TYPE_COLUMNS, ("id", "project_id", "created_at"))
_ACTIVITY = """
SELECT coalesce(sum(status = 'completed'), 0), coalesce(sum(status = 'failed'), 0),
  avg(CASE WHEN status = 'completed' AND started_at IS NOT NULL
      THEN finished_at - started_at END)
FROM jobs WHERE project_id = ? AND finished_at >= ?
"""


# A task deleted before it ended ends first, as cancelled: the dependencies trigger
# (migration 0019) then decides its dependants, and the purge's delete, which takes
# only finished jobs, takes it with everything that hangs off it.
_END_BEFORE_DELETE = "UPDATE jobs SET status = 'cancelled', finished_at = ? WHERE seq = ?"


class SqliteProjects:
    _writer: Writer
    _readers: Readers

    # --- projects -----------------------------------------------------------------------
    async def create_project(self, project: Project) -> None:
        params = project_params(project)
        await self._write_unique(_INSERT_PROJECT, params, "project name already exists")

    async def get_project(self, project_id: str) -> Project | None:
        def op(conn: sqlite3.Connection) -> Project | None:
            row = conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
            return project_from_row(row) if row else None

        return await self._readers.run(op)

    async def list_projects(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        where, params = ("WHERE status = ?", (status,)) if status else ("", ())

        def op(conn: sqlite3.Connection) -> tuple[list[Project], int]:
            total = conn.execute(f"SELECT count(*) FROM projects {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT * FROM projects {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
            return [project_from_row(r) for r in rows], int(total)

        return await self._readers.run(op)

    async def update_project(self, project: Project) -> None:
        id_, _name, *rest = project_params(project)
        params = (project.name, *rest[:-3], project.updated_at, id_)  # created_* stay
        await self._write_unique(
            _UPDATE_PROJECT, params, "project name already exists", must_exist="project"
        )

    async def delete_project(self, project_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM task_types WHERE project_id = ?", (project_id,))
            if conn.execute("DELETE FROM projects WHERE id = ?", (project_id,)).rowcount == 0:
                raise NotFound("project not found", project_id=project_id)

        await self._writer.submit(op)

    async def project_counts(self, project_ids: Sequence[str]) -> dict[str, dict[JobStatus, int]]:
        ids = tuple(project_ids)

        def op(conn: sqlite3.Connection) -> dict[str, dict[JobStatus, int]]:
            marks = ",".join("?" * len(ids))
            rows = conn.execute(
                f"SELECT project_id, status, count(*) FROM jobs WHERE project_id IN ({marks}) "
                "GROUP BY project_id, status",
                ids,
            ).fetchall()
            counts: dict[str, dict[JobStatus, int]] = {pid: {} for pid in ids}
            for project_id, status, n in rows:
                per = counts[project_id]
                per[job_status(status)] = per.get(job_status(status), 0) + n
            return counts

        return await self._readers.run(op) if ids else {}

    async def project_activity(self, project_id: str, since: float) -> ProjectActivity:
        def op(conn: sqlite3.Connection) -> ProjectActivity:
            agents = conn.execute(
                "SELECT count(DISTINCT executor_id) FROM jobs "
                "WHERE project_id = ? AND status = 'running'",
                (project_id,),
            ).fetchone()[0]
            completed, failed, average = conn.execute(_ACTIVITY, (project_id, since)).fetchone()
            return ProjectActivity(int(agents), int(completed), int(failed), average)

        return await self._readers.run(op)

    # --- task types ---------------------------------------------------------------------
    async def create_task_type(self, task_type: TaskType) -> None:
        params = task_type_params(task_type)
        await self._write_unique(_INSERT_TYPE, params, "task type name already exists")

    async def get_task_type(self, type_id: str) -> TaskType | None:
        def op(conn: sqlite3.Connection) -> TaskType | None:
            row = conn.execute("SELECT * FROM task_types WHERE id = ?", (type_id,)).fetchone()
            return task_type_from_row(row) if row else None

        return await self._readers.run(op)

    async def list_task_types(self, project_id: str) -> list[TaskType]:
        def op(conn: sqlite3.Connection) -> list[TaskType]:
            rows = conn.execute(
                "SELECT * FROM task_types WHERE project_id = ? ORDER BY created_at, id",
                (project_id,),
            ).fetchall()
            return [task_type_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def update_task_type(self, task_type: TaskType) -> None:
        id_, _project, *rest = task_type_params(task_type)
        params = (*rest[:-2], task_type.updated_at, id_)
        await self._write_unique(
            _UPDATE_TYPE, params, "task type name already exists", must_exist="task type"
        )

    async def delete_task_type(self, type_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute("DELETE FROM task_types WHERE id = ?", (type_id,)).rowcount == 0:
                raise NotFound("task type not found", type_id=type_id)

        await self._writer.submit(op)

    # --- tasks --------------------------------------------------------------------------
    async def find_duplicates(self, project_id: str, keys: Sequence[str]) -> dict[str, Job]:
        wanted = tuple(set(keys))

        def op(conn: sqlite3.Connection) -> dict[str, Job]:
            marks = ",".join("?" * len(wanted))
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS}, dedupe_key FROM jobs "
                f"WHERE project_id = ? AND dedupe_key IN ({marks})",
                (project_id, *wanted),
            ).fetchall()
            return {r["dedupe_key"]: job_from_row(r) for r in rows}

        return await self._readers.run(op) if wanted else {}

    async def update_pending_job(
        self, job_id: str, spec: JobSpec, dedupe_key: str | None = None
    ) -> Job:
        params = (
            spec.type,
            spec.runnable_level,
            labels_to_column(spec.labels),
            spec_to_json(spec),
            dedupe_key,
        )

        def op(conn: sqlite3.Connection) -> Job:
            job = ops.job_or_404(conn, job_id)
            if job.status != JobStatus.PENDING:
                raise InvalidTransition(
                    f"task is {job.status}; only a queued task can be changed", job_id=job_id
                )
            try:
                conn.execute(
                    "UPDATE jobs SET type = ?, runnable = ?, labels = ?, spec = ?, "
                    "dedupe_key = ? WHERE seq = ?",
                    (*params, job.seq),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists("an identical task already exists", job_id=job_id) from None
            return dataclasses.replace(job, spec=spec)

        result: Job = await self._writer.submit(op)
        return result

    async def delete_job(self, job_id: str) -> None:
        def op(conn: sqlite3.Connection) -> None:
            job = ops.job_or_404(conn, job_id)
            if job.status == JobStatus.RUNNING:
                raise InvalidTransition("a running task cannot be deleted", job_id=job_id)
            if not job.terminal:
                conn.execute(_END_BEFORE_DELETE, (time.time(), job.seq))
            retention.delete(conn, [job.seq], [job.workflow_id] if job.workflow_id else [])

        await self._writer.submit(op)

    # --- helpers ------------------------------------------------------------------------
    async def _write_unique(
        self, sql: str, params: tuple[object, ...], taken: str, must_exist: str | None = None
    ) -> None:
        """One statement; a UNIQUE violation is ``AlreadyExists``, no row is ``NotFound``."""

        def op(conn: sqlite3.Connection) -> None:
            try:
                changed = conn.execute(sql, params).rowcount
            except sqlite3.IntegrityError:
                raise AlreadyExists(taken, field="name") from None
            if must_exist and changed == 0:
                raise NotFound(f"{must_exist} not found")

        await self._writer.submit(op)
