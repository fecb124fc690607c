"""TaskDriver's projects and task types: the use cases behind its routes.

The tasks within a project are ``tasks.py``'s.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corral.auth.policy import Action, require, require_project_read
from corral.domain.principals import Principal, Role
from corral.domain.projects import (
    Project,
    ProjectStatus,
    TaskType,
    placeholders,
)
from corral.domain.states import JobStatus
from corral.errors import Conflict, NotFound
from corral.store.base import JobFilter, Store
from corral.store.projects_port import ProjectActivity

RECENT_SECONDS = 3600.0
NAME_SCAN = 500  # projects read per page while looking one up by name


@dataclass(frozen=True, slots=True)
class ProjectView:
    project: Project
    counts: dict[JobStatus, int]


@dataclass(frozen=True, slots=True)
class ProjectStats:
    view: ProjectView
    activity: ProjectActivity


class ProjectService:
    def __init__(self, store: Store) -> None:
        self._store = store

    # --- projects -----------------------------------------------------------------------
    async def list_projects(
        self, principal: Principal, status: ProjectStatus | None, limit: int, offset: int
    ) -> tuple[list[ProjectView], int]:
        require(principal, Action.READ)
        projects, total = await self._store.list_projects(status, limit, offset)
        counts = await self._store.project_counts([p.id for p in projects])
        return [ProjectView(p, counts.get(p.id, {})) for p in projects], total

    async def create_project(self, principal: Principal, changes: Mapping[str, Any]) -> ProjectView:
        """``changes`` holds ``Project`` field names; ``config`` is a partial dict of its own."""
        require(principal, Action.ADMIN)
        now = time.time()
        blank = Project(
            id=str(uuid.uuid4()), name="", created_at=now, updated_at=now, created_by=principal.id
        )
        project = _apply_project(blank, changes)
        await self._store.create_project(project)
        return ProjectView(project, {})

    async def get_project(self, principal: Principal, project_id: str) -> ProjectView:
        require_project_read(principal, project_id)
        project = await self.project(project_id)
        counts = await self._store.project_counts([project.id])
        return ProjectView(project, counts.get(project.id, {}))

    async def update_project(
        self, principal: Principal, project_id: str, changes: Mapping[str, Any]
    ) -> ProjectView:
        require(principal, Action.ADMIN)
        current = await self.project(project_id)
        project = _apply_project(current, changes)
        project = dataclasses.replace(project, updated_at=max(time.time(), current.updated_at))
        await self._store.update_project(project)
        counts = await self._store.project_counts([project.id])
        return ProjectView(project, counts.get(project.id, {}))

    async def delete_project(self, principal: Principal, project_id: str) -> None:
        """Refused while tasks wait or run: they would be orphans that still get worked on."""
        require(principal, Action.ADMIN)
        project = await self.project(project_id)
        counts = (await self._store.project_counts([project.id])).get(project.id, {})
        if counts.get(JobStatus.PENDING, 0) or counts.get(JobStatus.RUNNING, 0):
            raise Conflict(
                "project has queued or running tasks; close it, or delete its tasks first",
                project_id=project_id,
            )
        await self._store.delete_project(project_id)

    async def stats(self, principal: Principal, project_id: str) -> ProjectStats:
        view = await self.get_project(principal, project_id)
        since = time.time() - RECENT_SECONDS
        activity = await self._store.project_activity(project_id, since)
        return ProjectStats(view, activity)

    async def project(self, project_id: str) -> Project:
        """The project, or ``NotFound``: for the services that act within one."""
        project = await self._store.get_project(project_id)
        if project is None:
            raise NotFound("project not found", project_id=project_id)
        return project

    async def project_id_of(self, ref: str) -> str:
        """The id of the project ``ref`` names by id or by (unique) name, as TaskDriver's
        MCP tools take either; who may then act on it is checked by the call that follows."""
        if await self._store.get_project(ref) is not None:
            return ref
        offset = 0
        while True:
            projects, total = await self._store.list_projects(None, NAME_SCAN, offset)
            found = next((p.id for p in projects if p.name == ref), None)
            if found is not None:
                return found
            offset += len(projects)
            if not projects or offset >= total:
                raise NotFound("project not found", project_id=ref)

    async def type_id_of(self, project_id: str, ref: str) -> str:
        """The id of the task type ``ref`` names by id or by name within the project."""
        types = await self._store.list_task_types(project_id)
        for task_type in types:
            if ref in (task_type.id, task_type.name):
                return task_type.id
        return ref  # left for the task check to refuse, naming the field

    # --- task types ---------------------------------------------------------------------
    async def list_task_types(self, principal: Principal, project_id: str) -> list[TaskType]:
        require_project_read(principal, project_id)
        await self.project(project_id)
        return await self._store.list_task_types(project_id)

    async def create_task_type(
        self, principal: Principal, project_id: str, changes: Mapping[str, Any]
    ) -> TaskType:
        """Without ``variables`` the template's placeholders are the variables."""
        require(principal, Action.ADMIN)
        await self.project(project_id)
        now = time.time()
        blank = TaskType(
            id=str(uuid.uuid4()), project_id=project_id, name="", created_at=now, updated_at=now
        )
        values = dict(changes)
        if values.get("variables") is None:
            values["variables"] = tuple(placeholders(values.get("template") or ""))
        task_type = dataclasses.replace(blank, **values)
        task_type.validate()
        await self._store.create_task_type(task_type)
        return task_type

    async def get_task_type(self, principal: Principal, type_id: str) -> TaskType:
        if principal.role is not Role.AGENT:
            require(principal, Action.READ)  # before the lookup, as for every reader
        task_type = await self._task_type(type_id)
        require_project_read(principal, task_type.project_id)
        return task_type

    async def update_task_type(
        self, principal: Principal, type_id: str, changes: Mapping[str, Any]
    ) -> TaskType:
        """Existing tasks keep their dedupe keys; a new handling applies to new tasks."""
        require(principal, Action.ADMIN)
        current = await self._task_type(type_id)
        values = dict(changes)
        if "template" in values and "variables" not in values:
            declared = dict.fromkeys(current.variables)
            values["variables"] = tuple(
                {**declared, **dict.fromkeys(placeholders(values["template"]))}
            )
        task_type = dataclasses.replace(current, **values, updated_at=time.time())
        task_type.validate()
        await self._store.update_task_type(task_type)
        return task_type

    async def delete_task_type(self, principal: Principal, type_id: str) -> None:
        """Refused while tasks of the type wait or run, so no live task names a lost type."""
        require(principal, Action.ADMIN)
        await self._task_type(type_id)
        for status in (JobStatus.PENDING, JobStatus.RUNNING):
            _, live = await self._store.list_jobs(
                JobFilter(status=status, task_type_id=type_id), 0, 0
            )
            if live:
                raise Conflict(
                    "task type has queued or running tasks; delete them first", type_id=type_id
                )
        await self._store.delete_task_type(type_id)

    async def _task_type(self, type_id: str) -> TaskType:
        task_type = await self._store.get_task_type(type_id)
        if task_type is None:
            raise NotFound("task type not found", type_id=type_id)
        return task_type


def _apply_project(project: Project, changes: Mapping[str, Any]) -> Project:
    values = dict(changes)
    config = values.pop("config", None)
    if config:
        values["config"] = dataclasses.replace(project.config, **config)
    updated = dataclasses.replace(project, **values)
    updated.validate()
    return updated
