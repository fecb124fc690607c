"""TaskDriver's ``GET /metrics/json``: request counts, live sessions and process figures.

Request figures are this process's HTTP counters (``Metrics.http``, shared with
the Prometheus view): every answer, 4xx/5xx counted as errors, the average in
milliseconds. The system figures describe this dispatcher process, read at
each call: ``memory_usage`` its resident memory in MiB (``/proc/self``, as
Octaskly's stats show it), ``cpu_usage`` the CPU time it used as a percentage of
one core over the last second or so (``os.times()``, Octaskly's ``CpuSampler``),
``uptime`` whole seconds.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.responses import JSON
from corral.auth.policy import Action, require
from corral.services.stats import CpuSampler, resident_mb

router = APIRouter(route_class=TaskDriverRoute, tags=["taskdriver"])


def _cpu_sampler(request: Request) -> CpuSampler:
    """One sampler per app, made at the first call, so the figure is this app's own."""
    sampler: CpuSampler | None = getattr(request.app.state, "taskdriver_cpu", None)
    if sampler is None:
        sampler = request.app.state.taskdriver_cpu = CpuSampler()
    return sampler


def system_figures(started_at: float, cpu: CpuSampler) -> dict[str, Any]:
    rss = resident_mb()
    return {
        "memory_usage": 0.0 if rss is None else round(rss, 1),
        "cpu_usage": round(cpu.percent(), 1),
        "uptime": int(max(time.time() - started_at, 0.0)),
    }


@router.get("/metrics/json")
async def metrics_json(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    """Needs a token that may read (as the Prometheus metrics do); agent sessions may not."""
    require(principal, Action.READ)
    http = services.metrics.http
    data = {
        "requests_total": http.total,
        "requests_success": http.success,
        "requests_error": http.error,
        "response_time_avg": round(http.average_ms, 1),
        "active_sessions": await services.sessions.live_count(),
        "system": system_figures(services.started_at, _cpu_sampler(request)),
    }
    return JSON({"success": True, "data": data})
