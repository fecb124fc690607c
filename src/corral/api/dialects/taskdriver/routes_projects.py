"""TaskDriver's ``/api/projects``: list, create, read, update, delete, and the stats view.

Reading needs a token that may read; writing projects is for admins. Agent
sessions (which may only work on tasks) are refused by the policy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.taskdriver import render
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.dialects.taskdriver.schemas import ProjectBody
from corral.api.ranges import COUNT
from corral.api.responses import JSON
from corral.domain.projects import ProjectStatus
from corral.errors import InvalidInput

router = APIRouter(prefix="/api/projects", route_class=TaskDriverRoute, tags=["taskdriver"])

STATUS_FILTERS: dict[str, ProjectStatus | None] = {
    "active": ProjectStatus.ACTIVE,
    "closed": ProjectStatus.CLOSED,
    "all": None,
}


@router.get("")
async def list_projects(
    principal: PrincipalDep,
    services: ServicesDep,
    status: str = "all",
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
) -> JSON:
    if status not in STATUS_FILTERS:
        raise InvalidInput("status must be active, closed or all", field="status", value=status)
    views, total = await services.projects.list_projects(
        principal, STATUS_FILTERS[status], limit, offset
    )
    return render.page([render.project_view(v) for v in views], total, limit, offset)


@router.post("", status_code=201)
async def create_project(body: ProjectBody, principal: PrincipalDep, services: ServicesDep) -> JSON:
    if body.name is None:
        raise InvalidInput("name is required", field="name", value=None)
    view = await services.projects.create_project(principal, body.changes())
    return render.ok(render.project_view(view), status_code=201)


@router.get("/{project_id}")
async def get_project(project_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    view = await services.projects.get_project(principal, project_id)
    return render.ok(render.project_view(view))


@router.put("/{project_id}")
async def update_project(
    project_id: str, body: ProjectBody, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    view = await services.projects.update_project(principal, project_id, body.changes())
    return render.ok(render.project_view(view))


@router.delete("/{project_id}")
async def delete_project(project_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    await services.projects.delete_project(principal, project_id)
    return render.ok({"id": project_id, "deleted": True})


@router.get("/{project_id}/stats")
async def project_stats(project_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    stats = await services.projects.stats(principal, project_id)
    return render.ok(render.stats_view(stats))
