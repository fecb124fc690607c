"""TaskDriver's projects, task types and tasks: the use cases behind its routes.

Tasks are ordinary jobs (``project_id``, ``task_type_id``, instructions and
variables in the spec), submitted through ``JobService.submit`` so that
metrics and worker wake-ups stay in one place. Duplicate handling is decided
here from the task type; the store's unique index on the dedupe key is what
keeps two racing requests (on any replica) from both creating one.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.auth.policy import Action, require, require_project_read
from corral.domain.jobs import DEFAULT_TIMEOUT, Job, JobDraft, JobSpec
from corral.domain.principals import Principal, Role
from corral.domain.priority import NORMAL
from corral.domain.projects import (
    DuplicateHandling,
    Project,
    ProjectStatus,
    TaskType,
    dedupe_key,
    placeholders,
    render_template,
)
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, Conflict, CorralError, InvalidInput, NotFound
from corral.services.jobs import JobService
from corral.store.base import JobFilter, ProjectActivity, Store

RECENT_SECONDS = 3600.0
NAME_SCAN = 500  # projects read per page while looking one up by name
# Keys are stored only where a duplicate changes the answer.
_KEYED = (DuplicateHandling.IGNORE, DuplicateHandling.FAIL)


@dataclass(frozen=True, slots=True)
class ProjectView:
    project: Project
    counts: dict[JobStatus, int]


@dataclass(frozen=True, slots=True)
class ProjectStats:
    view: ProjectView
    activity: ProjectActivity


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """One task as a route parsed it; ``field`` prefixes error fields (``tasks.3.``)."""

    type_id: str
    instructions: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    batch_id: str | None = None
    command: str | None = None
    priority: int = NORMAL
    timeout: int = DEFAULT_TIMEOUT
    field: str = ""


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: JobStatus | None = None
    assigned_to: str | None = None
    batch_id: str | None = None
    type_id: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    """Every requested task in request order, and which ones this request created."""

    tasks: list[Job]
    created: list[bool]


@dataclass(frozen=True, slots=True)
class _Prepared:
    draft: JobDraft
    handling: DuplicateHandling
    field: str


class ProjectService:
    def __init__(self, store: Store, jobs: JobService) -> None:
        self._store = store
        self._jobs = jobs

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
        project = await self._project(project_id)
        counts = await self._store.project_counts([project.id])
        return ProjectView(project, counts.get(project.id, {}))

    async def update_project(
        self, principal: Principal, project_id: str, changes: Mapping[str, Any]
    ) -> ProjectView:
        require(principal, Action.ADMIN)
        current = await self._project(project_id)
        project = _apply_project(current, changes)
        project = dataclasses.replace(project, updated_at=max(time.time(), current.updated_at))
        await self._store.update_project(project)
        counts = await self._store.project_counts([project.id])
        return ProjectView(project, counts.get(project.id, {}))

    async def delete_project(self, principal: Principal, project_id: str) -> None:
        """Refused while tasks wait or run: they would be orphans that still get worked on."""
        require(principal, Action.ADMIN)
        project = await self._project(project_id)
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

    async def _project(self, project_id: str) -> Project:
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
        await self._project(project_id)
        return await self._store.list_task_types(project_id)

    async def create_task_type(
        self, principal: Principal, project_id: str, changes: Mapping[str, Any]
    ) -> TaskType:
        """Without ``variables`` the template's placeholders are the variables."""
        require(principal, Action.ADMIN)
        await self._project(project_id)
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

    # --- tasks: creating ----------------------------------------------------------------
    async def create_tasks(
        self, principal: Principal, project_id: str, requests: Sequence[TaskRequest]
    ) -> Created:
        """All or nothing, except that an ``ignore`` duplicate answers the task it repeats.

        A duplicate that slipped in between our check and the insert (another
        request, maybe on another replica) makes the insert fail on the unique
        index; one more pass then sees it as an ordinary duplicate.
        """
        require(principal, Action.SUBMIT)
        project = await self._project(project_id)
        if project.status is ProjectStatus.CLOSED:
            raise Conflict("project is closed; it takes no new tasks", project_id=project_id)
        types = {
            type_id: await self._store.get_task_type(type_id)
            for type_id in dict.fromkeys(r.type_id for r in requests)
        }
        prepared = [_prepare(project, types[r.type_id], r) for r in requests]
        try:
            return await self._insert(principal, project_id, prepared)
        except AlreadyExists as exc:
            if not exc.context.get("duplicate"):
                raise
        return await self._insert(principal, project_id, prepared)

    async def _insert(
        self, principal: Principal, project_id: str, prepared: Sequence[_Prepared]
    ) -> Created:
        keys = [p.draft.dedupe_key for p in prepared if p.draft.dedupe_key]
        stored = await self._store.find_duplicates(project_id, keys)
        fresh: list[JobDraft] = []
        slots: list[Job | int] = []  # a stored task, or an index into ``fresh``
        first_of: dict[str, int] = {}
        for item in prepared:
            key = item.draft.dedupe_key
            earlier = stored.get(key) if key else None
            if key is not None and (earlier is not None or key in first_of):
                if item.handling is DuplicateHandling.FAIL:
                    raise AlreadyExists(
                        "an identical task already exists",
                        field=f"{item.field}instructions",
                        task_id=earlier.id if earlier else None,
                    )
                slots.append(earlier if earlier is not None else first_of[key])
                continue
            if key is not None:
                first_of[key] = len(fresh)
            slots.append(len(fresh))
            fresh.append(item.draft)
        jobs = (await self._jobs.submit(principal, fresh)).jobs if fresh else []
        seen: set[int] = set()
        tasks: list[Job] = []
        created: list[bool] = []
        for slot in slots:
            if isinstance(slot, int):
                tasks.append(jobs[slot])
                created.append(slot not in seen)
                seen.add(slot)
            else:
                tasks.append(slot)
                created.append(False)
        return Created(tasks, created)

    # --- tasks: reading, changing, deleting ---------------------------------------------
    async def list_tasks(
        self, principal: Principal, project_id: str, flt: TaskFilter, limit: int, offset: int
    ) -> tuple[list[Job], int]:
        """Queue order, oldest first: the order agents are handed tasks in."""
        require(principal, Action.READ)
        await self._project(project_id)
        job_filter = JobFilter(
            status=flt.status,
            executor_id=flt.assigned_to,
            project_id=project_id,
            batch_id=flt.batch_id,
            task_type_id=flt.type_id,
        )
        return await self._store.list_jobs(job_filter, limit, offset, newest_first=False)

    async def get_task(self, principal: Principal, task_id: str) -> Job:
        require(principal, Action.READ)
        job = await self._store.get_job(task_id)
        if job is None or job.project_id is None:  # plain jobs are not TaskDriver tasks
            raise NotFound("task not found", task_id=task_id)
        return job

    async def update_task(
        self, principal: Principal, task_id: str, changes: Mapping[str, Any]
    ) -> Job:
        """Only a queued task changes. Instructions that were the type's template rendered
        with the old variables follow new variables; instructions given explicitly stay."""
        job = await self._owned_task(principal, task_id)
        task_type = await self._store.get_task_type(job.task_type_id or "")
        spec = job.spec
        variables = changes.get("variables", spec.variables)
        instructions = changes.get("instructions")
        if instructions is None:
            instructions = spec.instructions
            if "variables" in changes and task_type and _derived(task_type, spec):
                instructions = render_template(task_type.template, variables)
        command = changes.get("command", spec.command)
        spec = dataclasses.replace(
            spec,
            type="shell" if command is not None else "task",
            instructions=instructions,
            variables=variables,
            command=command,
        )
        spec.validate()
        keyed = task_type is not None and task_type.duplicate_handling in _KEYED
        key = dedupe_key(task_type.id, instructions, variables) if keyed and task_type else None
        return await self._store.update_pending_job(task_id, spec, key)

    async def delete_task(self, principal: Principal, task_id: str) -> None:
        await self._owned_task(principal, task_id)
        await self._store.delete_job(task_id)

    async def _owned_task(self, principal: Principal, task_id: str) -> Job:
        """Submitters change their own tasks; admins anyone's (the cancel rule)."""
        require(principal, Action.SUBMIT)
        job = await self.get_task(principal, task_id)
        require(principal, Action.CANCEL, owner_id=job.owner_id)
        return job


def _prepare(project: Project, task_type: TaskType | None, request: TaskRequest) -> _Prepared:
    """A task's job draft, with its dedupe key when its type wants one."""
    prefix = request.field
    if task_type is None or task_type.project_id != project.id:
        raise InvalidInput(
            "typeId names no task type of this project",
            field=f"{prefix}typeId",
            value=request.type_id,
        )
    instructions = _instructions(task_type, request.instructions, request.variables, prefix)
    spec = JobSpec(
        type="shell" if request.command is not None else "task",
        command=request.command,
        instructions=instructions,
        variables=request.variables,
        timeout=request.timeout,
    )
    keyed = task_type.duplicate_handling in _KEYED
    config = project.config
    retries = task_type.max_retries
    lease = task_type.lease_minutes
    draft = JobDraft(
        spec=spec,
        priority=request.priority,
        max_retries=config.default_max_retries if retries is None else retries,
        lease_seconds=max(1.0, 60 * (config.default_lease_minutes if lease is None else lease)),
        project_id=project.id,
        batch_id=request.batch_id,
        task_type_id=task_type.id,
        dedupe_key=dedupe_key(task_type.id, instructions, request.variables) if keyed else None,
    )
    try:
        draft.to_new_job("-", "-", 0.0).validate()
    except InvalidInput as exc:
        raise _prefixed(exc, prefix) from None
    return _Prepared(draft, task_type.duplicate_handling, prefix)


def _apply_project(project: Project, changes: Mapping[str, Any]) -> Project:
    values = dict(changes)
    config = values.pop("config", None)
    if config:
        values["config"] = dataclasses.replace(project.config, **config)
    updated = dataclasses.replace(project, **values)
    updated.validate()
    return updated


def _instructions(
    task_type: TaskType, given: str | None, variables: dict[str, Any], prefix: str
) -> str:
    if given is not None:
        return given
    if not task_type.template:
        raise InvalidInput(
            "instructions are required: the task type has no template",
            field=f"{prefix}instructions",
            value=None,
        )
    try:
        return render_template(task_type.template, variables)
    except InvalidInput as exc:
        raise _prefixed(exc, prefix) from None


def _derived(task_type: TaskType, spec: JobSpec) -> bool:
    """Whether the task's instructions are its type's template filled with its variables."""
    try:
        return render_template(task_type.template, spec.variables) == spec.instructions
    except InvalidInput:
        return False


def _prefixed(exc: CorralError, prefix: str) -> CorralError:
    """The same error, its field named from the request's root (``tasks.3.variables``)."""
    if not prefix or "field" not in exc.context:
        return exc
    return type(exc)(exc.message, **{**exc.context, "field": f"{prefix}{exc.context['field']}"})
