"""``/schedules``: every schedule with its next runs and last job, and pause/resume.

Pause and resume are plain forms (CSRF-checked) shown only to the schedule's
owner or an admin; the service checks again, so a forged form gets a 403.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.services.schedules import ScheduleChanges

router = APIRouter(route_class=PageRoute, include_in_schema=False)
NEXT_RUNS = 3  # shown per schedule


@router.get("/schedules")
async def schedules_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    views = await services.schedules.list(viewer.principal)
    rows = [
        {
            "view": view,
            "next_runs": [
                (t, _local(t, view.schedule.timezone)) for t in view.upcoming[:NEXT_RUNS]
            ],
            "last_job": view.last_jobs[0] if view.last_jobs else None,
            "can_change": viewer.can_cancel(view.schedule.owner_id),
        }
        for view in views
    ]
    context = {"viewer": viewer, "nav": "schedules", "rows": rows}
    return TEMPLATES.TemplateResponse(request, "schedules.html", context)


def _local(moment: float, timezone: str) -> str:
    """The run as the schedule's own zone reads it (the cron is written in that zone)."""
    return datetime.fromtimestamp(moment, ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@router.post("/schedules/{schedule_id}/pause")
async def pause(schedule_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    await services.schedules.update(viewer.principal, schedule_id, ScheduleChanges(paused=True))
    return RedirectResponse("/schedules", status_code=303)


@router.post("/schedules/{schedule_id}/resume")
async def resume(schedule_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    await services.schedules.update(viewer.principal, schedule_id, ScheduleChanges(paused=False))
    return RedirectResponse("/schedules", status_code=303)
