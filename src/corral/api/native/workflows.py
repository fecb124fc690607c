"""Workflow routes (issue 15): submit a graph of jobs in one request, read it back,
cancel it; and a job's dependencies with their results."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import Field

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.native.errors import NativeRoute
from corral.api.native.schemas import Body, SubmitJob
from corral.api.timefmt import iso
from corral.domain.dependencies import MAX_WORKFLOW_JOBS
from corral.domain.jobs import Job
from corral.errors import InvalidInput
from corral.services.jobs import Idempotency
from corral.services.workflows import KeyedDraft, WorkflowView
from corral.store.base import WorkflowRecord

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["workflows"])
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
KEY = r"^[A-Za-z0-9_.:-]{1,100}$"


class WorkflowJob(SubmitJob):
    """Any submit field, plus the job's key; ``depends_on`` names keys or job ids."""

    key: str = Field(pattern=KEY, description="names the job inside this workflow")


class SubmitWorkflow(Body):
    name: str = Field(min_length=1, max_length=200)
    jobs: list[WorkflowJob] = Field(min_length=1, max_length=MAX_WORKFLOW_JOBS)


def _created(record: WorkflowRecord, jobs: Sequence[Job]) -> bytes:
    by_id = {j.id: j for j in jobs}
    return orjson.dumps(
        {
            "id": record.id,
            "name": record.name,
            "jobs": record.keys,
            "statuses": {k: by_id[i].status.value for k, i in record.keys.items() if i in by_id},
        }
    )


@router.post("/workflows", status_code=201)
async def submit_workflow(
    body: SubmitWorkflow,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    items = []
    for index, job in enumerate(body.jobs):
        try:
            items.append(KeyedDraft(job.key, job.to_draft()))
        except InvalidInput as exc:
            raise InvalidInput(f"job {job.key}: {exc.message}", index=index, **exc.context) from exc
    idem = None
    if idempotency_key is not None:
        idem = Idempotency(idempotency_key, hashlib.sha256(await request.body()).hexdigest())
    created = await services.workflows.submit(
        principal, body.name, items, idempotency=idem, render=_created
    )
    if created.record is None:  # a replay: the first answer, as it was
        return Response(created.replay, created.replay_status, media_type="application/json")
    return Response(_created(created.record, created.jobs), 201, media_type="application/json")


@router.get("/workflows")
async def list_workflows(
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1 << 62)] = 0,
) -> list[dict[str, Any]]:
    views = await services.workflows.list(principal, limit, offset)
    return [_summary(v) for v in views]


@router.get("/workflows/{workflow_id}")
async def get_workflow(
    workflow_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return render_workflow(await services.workflows.get(principal, workflow_id))


@router.delete("/workflows/{workflow_id}")
async def cancel_workflow(
    workflow_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return render_workflow(await services.workflows.cancel(principal, workflow_id))


@router.get("/jobs/{job_id}/dependencies")
async def job_dependencies(
    job_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The job's dependencies with their ``result`` (readable by the worker running the
    job, too), and the jobs that wait for it."""
    view = await services.workflows.dependencies(principal, job_id)
    return {
        "id": view.job.id,
        "run_if": view.job.run_if.value if view.job.run_if else None,
        "blocked": view.job.blocked,
        "depends_on": [_parent(p) for p in view.parents],
        "dependants": [{"id": c.id, "status": c.status.value} for c in view.children],
    }


def _parent(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "exit_code": job.exit_code,
        "error_message": job.error_message,
        "result": job.result,
        "finished_at": iso(job.finished_at),
    }


def _summary(view: WorkflowView) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for job in view.jobs.values():
        counts[job.status.value] = counts.get(job.status.value, 0) + 1
    return {
        "id": view.record.id,
        "name": view.record.name,
        "owner_id": view.record.owner_id,
        "created_at": iso(view.record.created_at),
        "status": view.status,
        "counts": counts,
    }


def render_workflow(view: WorkflowView) -> dict[str, Any]:
    """The graph: each job by key with its status, and the keys (or outside job ids)
    it depends on."""
    waits: dict[str, list[str]] = {key: [] for key in view.jobs}
    for child, parent in view.edges:
        waits[child].append(parent)
    return {
        **_summary(view),
        "jobs": [
            {
                "key": key,
                "id": job.id,
                "command": job.spec.command,
                "status": job.status.value,
                "blocked": job.blocked,
                "run_if": job.run_if.value if job.run_if else None,
                "depends_on": waits[key],
                "exit_code": job.exit_code,
                "error_message": job.error_message,
                "started_at": iso(job.started_at),
                "finished_at": iso(job.finished_at),
            }
            for key, job in view.jobs.items()
        ],
    }
