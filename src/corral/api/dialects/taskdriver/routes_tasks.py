"""TaskDriver's tasks: created (one or in bulk) and listed under their project, read,
changed and deleted at ``/api/tasks/{taskId}``.

A created task answers 201; a task whose type folds duplicates (``ignore``)
answers the task it repeats with 200, so a client can tell without parsing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.taskdriver import render
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.dialects.taskdriver.schemas import BulkBody, TaskBody, TaskUpdateBody
from corral.api.ranges import COUNT
from corral.api.responses import JSON
from corral.api.status_names import parse_status
from corral.domain.priority import parse_priority
from corral.services.tasks import TaskFilter, TaskRequest

router = APIRouter(prefix="/api", route_class=TaskDriverRoute, tags=["taskdriver"])


def _request(body: TaskBody, batch_id: str | None = None, field: str = "") -> TaskRequest:
    return TaskRequest(
        type_id=body.type_id,
        instructions=body.instructions,
        variables=body.variables,
        batch_id=body.batch_id or batch_id,
        command=body.command,
        priority=parse_priority(body.priority),
        timeout=body.timeout,
        field=field,
    )


@router.post("/projects/{project_id}/tasks", status_code=201)
async def create_task(
    project_id: str, body: TaskBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    created = await services.tasks.create_tasks(principal, project_id, [_request(body)])
    return render.ok(render.task_view(created.tasks[0]), 201 if created.created[0] else 200)


@router.post("/projects/{project_id}/tasks/bulk", status_code=201)
async def create_tasks(
    project_id: str, body: BulkBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    """Every task or none; duplicates of ``ignore`` types come back under ``existing``."""
    requests = [_request(t, body.batch_id, f"tasks.{i}.") for i, t in enumerate(body.tasks)]
    created = await services.tasks.create_tasks(principal, project_id, requests)
    pairs = list(zip(created.tasks, created.created, strict=True))
    data = {
        "tasks": [render.task_view(job) for job in created.tasks],
        "created": [job.id for job, new in pairs if new],
        "existing": [job.id for job, new in pairs if not new],
        "createdCount": sum(created.created),
        "existingCount": len(pairs) - sum(created.created),
        "batchId": body.batch_id,
    }
    return render.ok(data, 201 if any(created.created) else 200)


@router.get("/projects/{project_id}/tasks")
async def list_tasks(
    project_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    status: str | None = None,
    assigned_to: Annotated[str | None, Query(alias="assignedTo")] = None,
    batch_id: Annotated[str | None, Query(alias="batchId")] = None,
    type_id: Annotated[str | None, Query(alias="typeId")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
) -> JSON:
    flt = TaskFilter(parse_status(status), assigned_to, batch_id, type_id)
    jobs, total = await services.tasks.list_tasks(principal, project_id, flt, limit, offset)
    return render.page([render.task_view(j) for j in jobs], total, limit, offset)


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    job = await services.tasks.get_task(principal, task_id)
    return render.ok(render.task_view(job))


@router.put("/tasks/{task_id}")
async def update_task(
    task_id: str, body: TaskUpdateBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    job = await services.tasks.update_task(principal, task_id, body.changes())
    return render.ok(render.task_view(job))


@router.delete("/tasks/{task_id}")
async def delete_task(task_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    await services.tasks.delete_task(principal, task_id)
    return render.ok({"id": task_id, "deleted": True})
