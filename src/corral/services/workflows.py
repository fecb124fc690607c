"""Workflows: a graph of jobs submitted in one request, read back with each job's
status, and cancelled as a whole.

A workflow is its jobs: it has no state of its own beyond a name and the map from
the request's keys to job ids, so its status is always the one its jobs make
(``domain.dependencies.workflow_status``) and no second copy can disagree.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from corral.auth.policy import Action, require
from corral.domain.dependencies import MAX_WORKFLOW_JOBS, topological_order, workflow_status
from corral.domain.jobs import Job, JobDraft
from corral.domain.principals import Principal
from corral.errors import CorralError, InvalidInput, NotFound
from corral.services.dependencies import DependencyView, dependency_view
from corral.services.jobs import Idempotency, JobService
from corral.store.base import RenderFn, Store, WorkflowRecord


@dataclass(frozen=True, slots=True)
class KeyedDraft:
    """One job of a workflow request: its key and its draft, whose ``depends_on``
    names keys of the same request or ids of existing jobs."""

    key: str
    draft: JobDraft


@dataclass(frozen=True, slots=True)
class WorkflowView:
    record: WorkflowRecord
    jobs: dict[str, Job]  # by key
    edges: list[tuple[str, str]]  # (dependant key, dependency key or outside job id)

    @property
    def status(self) -> str:
        return workflow_status([j.status.value for j in self.jobs.values()])


@dataclass(frozen=True, slots=True)
class CreatedWorkflow:
    record: WorkflowRecord | None
    jobs: list[Job]
    replay: bytes | None = None
    replay_status: int = 201


WorkflowRender = Callable[[WorkflowRecord, Sequence[Job]], bytes]


class WorkflowService:
    def __init__(self, store: Store, jobs: JobService) -> None:
        self._store = store
        self._jobs = jobs

    async def submit(
        self,
        principal: Principal,
        name: str,
        items: Sequence[KeyedDraft],
        *,
        idempotency: Idempotency | None = None,
        render: WorkflowRender | None = None,
    ) -> CreatedWorkflow:
        """All the jobs or none; a cycle or a name that is neither a key nor a job id
        is a 400 naming it."""
        require(principal, Action.SUBMIT)
        keys = _keys(items)
        record = WorkflowRecord(str(uuid.uuid4()), name, principal.id, time.time(), keys)
        graph = {i.key: i.draft.depends_on for i in items}
        topological_order(graph)  # refuses a cycle, naming its keys
        drafts = [_resolved(i, record, keys) for i in items]
        # The first answer, kept for replays, names the workflow as well as its jobs.
        job_render: RenderFn | None = None if render is None else partial(render, record)
        try:
            submitted = await self._jobs.submit(
                principal, drafts, idempotency=idempotency, render=job_render, workflow=record
            )
        except InvalidInput as exc:
            unknown = exc.context.get("unknown")
            if exc.context.get("field") != "depends_on" or not unknown:
                raise
            raise InvalidInput(
                "depends_on names unknown keys or job ids: " + ", ".join(unknown[:10]),
                field="depends_on",
                unknown=unknown,
            ) from None
        if submitted.replay is not None:
            return CreatedWorkflow(None, [], submitted.replay.body, submitted.replay.status_code)
        return CreatedWorkflow(record, submitted.jobs)

    async def get(self, principal: Principal, workflow_id: str) -> WorkflowView:
        require(principal, Action.READ)
        record = await self._store.get_workflow(workflow_id)
        if record is None:
            raise NotFound("workflow not found", workflow_id=workflow_id)
        return await self._view(record)

    async def list(self, principal: Principal, limit: int, offset: int) -> list[WorkflowView]:
        require(principal, Action.READ)
        records = await self._store.list_workflows(limit, offset)
        return [await self._view(r) for r in records]

    async def cancel(self, principal: Principal, workflow_id: str) -> WorkflowView:
        """Cancel every unfinished job (dependants first, so none is started by the
        cancel of its parent); a job that ended meanwhile is left as it ended."""
        view = await self.get(principal, workflow_id)
        require(principal, Action.CANCEL, owner_id=view.record.owner_id)
        graph = {k: [p for d, p in view.edges if d == k] for k in view.jobs}
        for key in reversed(topological_order(graph)):
            job = view.jobs[key]
            if not job.terminal:
                try:
                    await self._jobs.cancel(principal, job.id)
                except CorralError:
                    continue  # ended, or cancelled by a cascade, since it was read
        return await self.get(principal, workflow_id)

    async def dependencies(self, principal: Principal, job_id: str) -> DependencyView:
        return await dependency_view(self._store, principal, job_id)

    async def _view(self, record: WorkflowRecord) -> WorkflowView:
        jobs = {j.id: j for j in await self._store.get_jobs(list(record.keys.values()))}
        key_of = {job_id: key for key, job_id in record.keys.items()}
        edges = [
            (key_of[child], key_of.get(parent, parent))
            for child, parent in await self._store.workflow_edges(record.id)
            if child in key_of
        ]
        by_key = {key: jobs[job_id] for key, job_id in record.keys.items() if job_id in jobs}
        return WorkflowView(record, by_key, sorted(edges))


def _keys(items: Sequence[KeyedDraft]) -> dict[str, str]:
    if not items:
        raise InvalidInput("a workflow needs at least one job", field="jobs")
    if len(items) > MAX_WORKFLOW_JOBS:
        raise InvalidInput(f"a workflow holds at most {MAX_WORKFLOW_JOBS} jobs", field="jobs")
    keys: dict[str, str] = {}
    for item in items:
        if item.key in keys:
            raise InvalidInput(f"key {item.key!r} is used twice", field="jobs", key=item.key)
        keys[item.key] = str(uuid.uuid4())
    return keys


def _resolved(item: KeyedDraft, record: WorkflowRecord, keys: dict[str, str]) -> JobDraft:
    """The draft with its keys turned into the job ids they stand for."""
    return dataclasses.replace(
        item.draft,
        job_id=keys[item.key],
        workflow_id=record.id,
        depends_on=tuple(keys.get(name, name) for name in item.draft.depends_on),
    )
