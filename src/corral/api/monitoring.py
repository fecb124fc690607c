"""``GET /health`` and ``GET /metrics``, shared by the Octaskly and TaskDriver faces.

Both documents put health on the same path with different bodies, so one body
carries both key sets: Octaskly's ``status``/``version``/``uptime_seconds`` and
TaskDriver's ``success``/``data``. Errors work the same way: the body holds
Octaskly's ``error``/``status``/``timestamp`` and TaskDriver's
``success``/``correlationId``, so a client of either reads it as its own.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from corral import __version__, errors
from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.octaskly import errors as octaskly
from corral.api.request_context import current_request_id
from corral.api.responses import JSON
from corral.api.routing import DialectRoute
from corral.api.timefmt import iso
from corral.errors import Unavailable

PROVIDERS = {"sqlite": "sqlite", "postgres": "postgresql"}
DATABASE_DOWN = "Database connection failed"


def _both_shapes(status: int, message: str) -> JSON:
    """Octaskly's error body with TaskDriver's keys added."""
    body = {**octaskly.error_body(status, message), "success": False}
    return JSON({**body, "correlationId": current_request_id()}, status_code=status)


def from_domain(exc: errors.CorralError) -> JSON:
    return octaskly.with_headers(_both_shapes(*octaskly.classify(exc)), exc)


def from_validation(exc: RequestValidationError) -> JSON:
    return _both_shapes(400, octaskly.validation_message(exc))


class MonitoringRoute(DialectRoute):
    render_domain = staticmethod(from_domain)
    render_validation = staticmethod(from_validation)


router = APIRouter(route_class=MonitoringRoute, tags=["monitoring"])


@router.get("/health")
async def health(services: ServicesDep) -> JSON:
    """Unauthenticated, as both documents say; 503 when the database does not answer."""
    now = time.time()
    uptime = int(max(now - services.started_at, 0))
    retry_after: int | None = None
    try:
        await services.store.ping()
    except Unavailable as exc:
        retry_after = exc.retry_after
    healthy = retry_after is None
    status = "healthy" if healthy else "unhealthy"
    body: dict[str, Any] = {
        "status": status,
        "version": __version__,
        "uptime_seconds": uptime,
        "success": healthy,
        "data": {
            "status": status,
            "timestamp": iso(now),
            "uptime": uptime,
            "storage": {"healthy": healthy, "provider": _provider(services.store.backend)},
        },
    }
    if healthy:
        return JSON(body)
    extra = {"message": DATABASE_DOWN, "error": DATABASE_DOWN, "timestamp": iso(now)}
    headers = {"Retry-After": str(retry_after)}
    return JSON({**body, **extra, "correlationId": current_request_id()}, 503, headers)


def _provider(backend: str) -> str:
    return PROVIDERS.get(backend, backend)


@router.get("/metrics")
async def metrics(services: ServicesDep, principal: PrincipalDep) -> Response:
    """The native ``/api/v1/metrics`` registry, behind the same gate: any reader."""
    stats = await services.stats.queue(principal)
    services.metrics.set_queue_gauges(stats.jobs_by_status, stats.pending_by_priority)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
