"""TaskDriver's task types: listed and created under their project, read, changed and
deleted at ``/api/task-types/{typeId}``. Writing them is for admins."""

from __future__ import annotations

from fastapi import APIRouter

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.taskdriver import render
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.dialects.taskdriver.schemas import TaskTypeBody
from corral.api.responses import JSON
from corral.errors import InvalidInput

router = APIRouter(prefix="/api", route_class=TaskDriverRoute, tags=["taskdriver"])


@router.get("/projects/{project_id}/task-types")
async def list_task_types(project_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    types = await services.projects.list_task_types(principal, project_id)
    return render.ok([render.task_type_view(t) for t in types])


@router.post("/projects/{project_id}/task-types", status_code=201)
async def create_task_type(
    project_id: str, body: TaskTypeBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    if body.name is None:
        raise InvalidInput("name is required", field="name", value=None)
    task_type = await services.projects.create_task_type(principal, project_id, body.changes())
    return render.ok(render.task_type_view(task_type), status_code=201)


@router.get("/task-types/{type_id}")
async def get_task_type(type_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    task_type = await services.projects.get_task_type(principal, type_id)
    return render.ok(render.task_type_view(task_type))


@router.put("/task-types/{type_id}")
async def update_task_type(
    type_id: str, body: TaskTypeBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    task_type = await services.projects.update_task_type(principal, type_id, body.changes())
    return render.ok(render.task_type_view(task_type))


@router.delete("/task-types/{type_id}")
async def delete_task_type(type_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    await services.projects.delete_task_type(principal, type_id)
    return render.ok({"id": type_id, "deleted": True})
