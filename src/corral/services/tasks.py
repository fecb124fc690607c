"""TaskDriver's tasks: the use cases behind its task routes and MCP tools.

Tasks are ordinary jobs (``project_id``, ``task_type_id``, instructions and
variables in the spec), submitted through ``JobService.submit`` so that
metrics and worker wake-ups stay in one place. Duplicate handling is decided
here from the task type; the store's unique index on the dedupe key is what
keeps two racing requests (on any replica) from both creating one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.auth.policy import Action, require
from corral.domain.jobs import DEFAULT_TIMEOUT, Job, JobDraft, JobSpec
from corral.domain.principals import Principal
from corral.domain.priority import NORMAL
from corral.domain.projects import (
    DuplicateHandling,
    Project,
    ProjectStatus,
    TaskType,
    dedupe_key,
    render_template,
)
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, Conflict, CorralError, InvalidInput, NotFound
from corral.services.jobs import JobService
from corral.services.projects import ProjectService
from corral.store.base import JobFilter, Store

# Keys are stored only where a duplicate changes the answer.
_KEYED = (DuplicateHandling.IGNORE, DuplicateHandling.FAIL)


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


class TaskService:
    def __init__(self, store: Store, jobs: JobService, projects: ProjectService) -> None:
        self._store = store
        self._jobs = jobs
        self._projects = projects

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
        project = await self._projects.project(project_id)
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
        await self._projects.project(project_id)
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
