"""Octaskly's ``/api/v1/tasks`` and ``/api/v1/stats``.

Tasks are the core's jobs: any job, whichever face submitted it, is a task
here. Only a queued task can be cancelled through this face, as documented;
the native API can still stop a running one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.octaskly import render
from corral.api.dialects.octaskly.errors import OctasklyRoute
from corral.api.dialects.octaskly.schemas import CreateTask
from corral.api.ranges import COUNT
from corral.api.responses import JSON
from corral.api.status_names import parse_status
from corral.domain.states import JobStatus
from corral.errors import Conflict, InvalidTransition, NotFound
from corral.store.base import JobFilter

router = APIRouter(prefix="/api/v1", route_class=OctasklyRoute, tags=["octaskly"])

MAX_PAGE = 1000
FINISHED = {JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}


@router.post("/tasks", status_code=201)
async def create_task(body: CreateTask, principal: PrincipalDep, services: ServicesDep) -> JSON:
    submitted = await services.jobs.submit(principal, [body.to_draft()])
    return JSON(render.created(submitted.jobs[0]), status_code=201)


@router.get("/tasks")
async def list_tasks(
    principal: PrincipalDep,
    services: ServicesDep,
    status: str | None = None,
    worker_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=COUNT)] = 100,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
) -> dict[str, Any]:
    """Newest first; a ``limit`` above 1000 is lowered to it, and the answer says so."""
    limit = min(limit, MAX_PAGE)
    flt = JobFilter(status=parse_status(status, "|"), executor_id=worker_id)
    jobs, total = await services.jobs.list_jobs(principal, flt, limit, offset)
    return render.page(jobs, total, limit, offset)


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    return render.detail(await services.jobs.details(principal, task_id))


@router.delete("/tasks/{task_id}")
async def cancel_task(task_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    """As documented: a running task is a 409, a finished one a 404."""
    try:
        job = await services.jobs.cancel(principal, task_id, pending_only=True)
    except InvalidTransition as exc:
        if exc.context.get("status") in FINISHED:
            raise NotFound("Task not found", task_id=task_id) from None
        raise Conflict("Cannot cancel running task", task_id=task_id) from None
    # A claim that slipped in after the check still gets the cancel (see JobService.cancel).
    body = {"id": job.id, "status": "cancelled", "message": "Task cancelled successfully"}
    return JSON(body)


@router.get("/stats")
async def stats(principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    overview = await services.stats.overview(
        principal,
        started_at=services.started_at,
        offline_after=services.executors.offline_after,
    )
    return render.stats(overview)
