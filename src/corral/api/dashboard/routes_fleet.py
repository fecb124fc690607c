"""``/workers``, ``/queues``, ``/projects``: the fleet, the queue and TaskDriver's projects.

Each page reads through the services (READ right) and renders its live part
as a fragment of its own (``?fragment=...``), which ``app.js`` re-fetches when
``/ui/events`` says a topic moved. Charts are SVG drawn here, on the server:
the geometry is computed below so templates only place shapes, and the page
needs no script and no inline style (the CSP allows neither).

Admins drain and remove workers from ``/workers`` with plain forms (CSRF-checked),
through the same executor service as ``POST /api/v1/executors/{id}/drain`` and
``DELETE /api/v1/executors/{id}``, so the same policy decides: a forged form from
anyone else gets a 403.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, ViewerDep
from corral.api.dashboard.templating import TEMPLATES, duration
from corral.api.deps import ServicesDep
from corral.api.ranges import COUNT
from corral.auth.policy import Action, require
from corral.domain.priority import LEVELS, QUEUE_CLASSES
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorState
from corral.errors import NotFound
from corral.services.executors import ExecutorView
from corral.services.rates import Activity, Interval, Latency

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PROJECTS_PAGE = 50
RUNNING_SHOWN = 10  # job links per worker row; a busy worker says "and N more"
STATE_ORDER = {ExecutorState.ONLINE: 0, ExecutorState.DRAINING: 1, ExecutorState.OFFLINE: 2}
TASK_STATUSES = (
    (JobStatus.PENDING, "queued"),
    (JobStatus.RUNNING, "running"),
    (JobStatus.COMPLETED, "completed"),
    (JobStatus.FAILED, "failed"),
    (JobStatus.CANCELLED, "cancelled"),
)
NOTICES = {
    "drained": "Worker draining: it takes no new jobs, finishes the running ones, then exits.",
    "removed": "Worker removed, and the tokens bound to it revoked.",
    "gone": "That worker is no longer registered.",
}

# Chart geometry, in viewBox units: the plot sits between the margins.
WIDTH, HEIGHT = 320.0, 150.0
TOP, BOTTOM, LEFT, RIGHT = 18.0, 122.0, 40.0, 312.0
FASTEST = 0.0005  # seconds: the floor of the latency chart's log scale


def _render(request: Request, name: str, context: dict[str, Any]) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context)


# --- workers -------------------------------------------------------------------------------
@router.get("/workers")
async def workers(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    fragment: Literal["rows"] | None = None,
    done: str = "",
) -> Response:
    views = await services.executors.views(viewer.principal)
    views.sort(key=lambda v: (STATE_ORDER[v.state], v.executor.info.executor_id))
    context = {
        "viewer": viewer,
        "nav": "workers",
        "workers": views,
        "counts": _state_counts(views),
        "offline_after": services.executors.offline_after,
        "now": time.time(),
        "shown": RUNNING_SHOWN,
        "notice": NOTICES.get(done),
    }
    return _render(request, "workers_fleet.html" if fragment else "workers.html", context)


@router.post("/workers/{executor_id}/drain")
async def drain_worker(executor_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    """As ``corral workers drain``: its next heartbeat tells the worker to stop claiming,
    finish its running jobs and exit."""
    require(viewer.principal, Action.EXECUTE)  # the API's gate on the route (route_rights)
    try:
        await services.executors.set_draining(viewer.principal, executor_id)
    except NotFound:  # it left (a drained worker deregisters) since the page was drawn
        return RedirectResponse("/workers?done=gone", status_code=303)
    return RedirectResponse("/workers?done=drained", status_code=303)


@router.post("/workers/{executor_id}/remove")
async def remove_worker(executor_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    """As ``corral workers remove``: forget the worker and revoke the tokens bound to it."""
    require(viewer.principal, Action.EXECUTE)  # before the service's "not found", as the API
    try:
        await services.executors.remove(viewer.principal, executor_id)
    except NotFound:
        return RedirectResponse("/workers?done=gone", status_code=303)
    return RedirectResponse("/workers?done=removed", status_code=303)


def _state_counts(views: Sequence[ExecutorView]) -> dict[str, int]:
    found = Counter(v.state.value for v in views)
    return {state.value: found.get(state.value, 0) for state in ExecutorState}


# --- queues --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    text: str  # the value as people read it
    x: float
    y: float
    width: float
    height: float

    @property
    def middle(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True, slots=True)
class Lines:
    started: str  # polyline points
    finished: str
    peak: str  # the top of the y axis, as text
    points: int


@router.get("/queues")
async def queues(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    fragment: Literal["charts"] | None = None,
) -> Response:
    queue = await services.stats.queue(viewer.principal)
    held_keys = await services.stats.held_keys(viewer.principal)
    activity = await services.rates.activity(viewer.principal)
    pending = _pending_rows(queue.pending_by_priority)
    context = {
        "viewer": viewer,
        "nav": "queues",
        "pending": pending,
        "pending_total": sum(count for _, _, count in pending),
        "pending_bars": _bars([(name, float(n), str(n)) for name, _, n in pending], linear),
        "held_keys": held_keys,
        "activity": activity,
        "rates": _lines(activity),
        "window_minutes": round(activity.window / 60),
        "waits": _wait_rows(activity.recent, activity.overall),
        "latency_bars": _latency_bars(activity.recent),
        "width": WIDTH,
        "height": HEIGHT,
        "bottom": BOTTOM,
        "top": TOP,
        "left": LEFT,
        "right": RIGHT,
    }
    return _render(request, "queues_charts.html" if fragment else "queues.html", context)


def _pending_rows(by_priority: Mapping[int, int]) -> list[tuple[str, str, int]]:
    """(level, queue class, count), highest priority first, every known level shown."""
    values = sorted(set(LEVELS) | set(by_priority), reverse=True)
    return [
        (LEVELS.get(v, str(v)), QUEUE_CLASSES.get(v, str(v)), by_priority.get(v, 0)) for v in values
    ]


def linear(value: float, peak: float) -> float:
    return value / peak if peak > 0 else 0.0


def logarithmic(value: float, peak: float) -> float:
    """Waits span milliseconds to a minute; on a linear scale p50 would vanish."""
    if value <= 0 or peak <= FASTEST:
        return 0.0
    low = math.log10(FASTEST)
    return max(0.0, (math.log10(max(value, FASTEST)) - low) / (math.log10(peak) - low))


Scale = Callable[[float, float], float]  # (value, peak) -> 0..1 of the plot's height


def _bars(
    items: Sequence[tuple[str, float, str]], scale: Scale, peak: float | None = None
) -> list[Bar]:
    """Evenly spaced bars with their labels; a zero still shows a hairline at the base."""
    if not items:
        return []
    top = peak if peak is not None else max(value for _, value, _ in items)
    slot = (RIGHT - LEFT) / len(items)
    width = min(slot * 0.6, 60.0)
    bars = []
    for i, (label, value, text) in enumerate(items):
        height = max(1.0, scale(value, top) * (BOTTOM - TOP))
        x = LEFT + i * slot + (slot - width) / 2
        bars.append(Bar(label, text, round(x, 1), round(BOTTOM - height, 1), width, height))
    return bars


def _lines(activity: Activity) -> Lines | None:
    """Two polylines over the ring's window, newest at the right; None until two spans."""
    spans = activity.intervals
    if len(spans) < 2:
        return None
    peak = nice_ceiling(max(max(s.started, s.finished) for s in spans))

    def points(rate: Callable[[Interval], float]) -> str:
        return " ".join(f"{_x(s, activity.window)},{_y(rate(s), peak)}" for s in spans)

    return Lines(
        started=points(lambda s: s.started),
        finished=points(lambda s: s.finished),
        peak=f"{peak:g}/s",
        points=len(spans),
    )


def _x(span: Interval, window: float) -> float:
    return round(RIGHT - (RIGHT - LEFT) * min(span.age, window) / window, 1)


def _y(rate: float, peak: float) -> float:
    return round(BOTTOM - (BOTTOM - TOP) * linear(rate, peak), 1)


def nice_ceiling(value: float) -> float:
    """1, 2 or 5 times a power of ten at or above ``value``: a y axis people can read."""
    if value <= 0:
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def wait_text(seconds: float | None, ceiling: float) -> str:
    """The top bucket has no upper bound: an estimate there only says "at least"."""
    if seconds is None:
        return "—"
    return f"≥ {duration(ceiling)}" if seconds >= ceiling else duration(seconds)


def _wait_rows(recent: Latency, overall: Latency) -> list[tuple[str, str, str]]:
    """(percentile, over the window, since start): one table row each."""
    return [
        (
            f"p{q * 100:g}",
            wait_text(value, recent.ceiling),
            wait_text(overall.quantiles[q], overall.ceiling),
        )
        for q, value in recent.quantiles.items()
    ]


def _latency_bars(latency: Latency) -> list[Bar]:
    if not latency.count:
        return []
    items = [
        (f"p{q * 100:g}", value or 0.0, wait_text(value, latency.ceiling))
        for q, value in latency.quantiles.items()
    ]
    return _bars(items, logarithmic, peak=latency.ceiling)


# --- projects ------------------------------------------------------------------------------
@router.get("/projects")
async def projects(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
    fragment: Literal["rows"] | None = None,
) -> Response:
    views, total = await services.projects.list_projects(
        viewer.principal, None, PROJECTS_PAGE, offset
    )
    context = {
        "viewer": viewer,
        "nav": "projects",
        "projects": views,
        "statuses": TASK_STATUSES,
        "total": total,
        "offset": offset,
        "limit": PROJECTS_PAGE,
        "fragment_url": f"/projects?fragment=rows&offset={offset}",
    }
    return _render(request, "projects_rows.html" if fragment else "projects.html", context)


@router.get("/projects/{project_id}")
async def project(
    request: Request,
    project_id: str,
    viewer: ViewerDep,
    services: ServicesDep,
    fragment: Literal["live"] | None = None,
) -> Response:
    principal = viewer.principal
    stats = await services.projects.stats(principal, project_id)
    leases = await services.agents.active_agents(principal, project_id)
    context: dict[str, Any] = {
        "viewer": viewer,
        "nav": "projects",
        "project": stats.view.project,
        "counts": stats.view.counts,
        "total_tasks": sum(stats.view.counts.values()),
        "activity": stats.activity,
        "statuses": TASK_STATUSES,
        "leases": leases,
        "now": time.time(),
    }
    if fragment:
        return _render(request, "project_live.html", context)
    context["task_types"] = await services.projects.list_task_types(principal, project_id)
    return _render(request, "project.html", context)
