"""``/workflows`` and ``/workflows/{id}``: workflows and one workflow's graph, drawn
on the server as SVG (as the queue charts are) and re-fetched live as a fragment
(``?fragment=graph``) whenever a job changes state."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.dashboard.graph import NODE_H, NODE_W, layout
from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/workflows")
async def workflows(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    fragment: Literal["rows"] | None = None,
) -> Response:
    views = await services.workflows.list(viewer.principal, limit, 0)
    context = {"viewer": viewer, "nav": "workflows", "workflows": views}
    name = "_workflows_rows.html" if fragment else "workflows.html"
    return TEMPLATES.TemplateResponse(request, name, context)


@router.get("/workflows/{workflow_id}")
async def workflow(
    request: Request,
    workflow_id: str,
    viewer: ViewerDep,
    services: ServicesDep,
    fragment: Literal["graph"] | None = None,
) -> Response:
    view = await services.workflows.get(viewer.principal, workflow_id)
    inside = [(child, parent) for child, parent in view.edges if parent in view.jobs]
    outside = [(child, parent) for child, parent in view.edges if parent not in view.jobs]
    context = {
        "viewer": viewer,
        "nav": "workflows",
        "view": view,
        "graph": layout(list(view.jobs), inside),
        "outside": outside,
        "node_w": NODE_W,
        "node_h": NODE_H,
        "can_cancel": view.status in ("pending", "running")
        and viewer.can_cancel(view.record.owner_id),
    }
    name = "_workflow_graph.html" if fragment else "workflow.html"
    return TEMPLATES.TemplateResponse(request, name, context)


@router.post("/workflows/{workflow_id}/cancel")
async def cancel(workflow_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    await services.workflows.cancel(viewer.principal, workflow_id)
    return RedirectResponse(f"/workflows/{quote(workflow_id, safe='')}", status_code=303)
