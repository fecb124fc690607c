"""``/``: the jobs list (placeholder until the jobs page lands)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import ViewerDep
from corral.api.dashboard.templating import TEMPLATES

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/")
async def home(request: Request, viewer: ViewerDep) -> Response:
    return TEMPLATES.TemplateResponse(request, "home.html", {"viewer": viewer, "nav": "jobs"})
