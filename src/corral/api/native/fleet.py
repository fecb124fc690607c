"""Executor registration and heartbeats, admin views, health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.native import render
from corral.api.native.errors import NativeRoute
from corral.api.native.schemas import ExecutorHeartbeat, RegisterExecutor
from corral.api.responses import JSON
from corral.api.timefmt import iso
from corral.auth.policy import Action, require
from corral.domain.jobs import MAX_CLAIM
from corral.domain.priority import QUEUE_CLASSES
from corral.domain.workers import ExecutorInfo
from corral.errors import Unavailable
from corral.services.executors import Capacity, ExecutorView

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["fleet"])


@router.post("/executors", status_code=201)
async def register_executor(
    body: RegisterExecutor, request: Request, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    info = ExecutorInfo(
        executor_id=body.executor_id,
        principal_id=principal.id,
        hostname=body.hostname,
        ip=request.client.host if request.client else None,
        cpu_count=body.cpu_count,
        memory_mb=body.memory_mb,
        os=body.os,
        labels=tuple(body.labels),
        concurrency=body.concurrency,
        metadata=body.metadata,
        cpus=body.cpus,
        isolation=body.isolation,
        network_control=body.network_control,
    )
    executor = await services.executors.register(principal, info)
    state = executor.state(executor.last_heartbeat, services.executors.offline_after)
    # The claim limit rides along so a worker never asks for more than this server takes.
    return {**render.executor(ExecutorView(executor, state, [])), "claim_limit": MAX_CLAIM}


@router.post("/executors/{executor_id}/heartbeat")
async def executor_heartbeat(
    executor_id: str, body: ExecutorHeartbeat, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    if body.draining:
        await services.executors.set_draining(principal, executor_id)
    capacity = Capacity(body.cpus, body.memory_mb, body.isolation, body.network_control)
    if not capacity.empty:
        await services.executors.restate(principal, executor_id, capacity)
    held = [(j.job_id, j.attempt) for j in body.jobs]
    leases = await services.leases.renew_all(principal, executor_id, held)
    # Said only when true ("drain": an admin drained it; "register": an admin removed it
    # and only its claims know it now), so older answers read the same.
    drain, register = await services.executors.orders(executor_id)
    return {
        **({"drain": True} if drain and not body.draining else {}),
        **({"register": True} if register else {}),
        "renewed": [
            {
                "job_id": j.id,
                "attempt": j.attempt,
                "lease_expires_at": iso(j.lease_expires_at),
                "cancel_requested": j.cancel_requested,
            }
            for j in leases.renewed
        ],
        "lost": leases.lost,
        "cancel": leases.cancel,
    }


@router.delete("/executors/{executor_id}")
async def deregister_executor(
    executor_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    await services.executors.remove(principal, executor_id)
    return {"executor_id": executor_id, "status": "deregistered"}


@router.post("/executors/{executor_id}/drain")
async def drain_executor(
    executor_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Stop a worker taking jobs: its next heartbeat tells it to finish what it runs
    and exit, as a first Ctrl-C would (`corral workers drain NAME`)."""
    await services.executors.set_draining(principal, executor_id)
    return {"executor_id": executor_id, "status": "draining"}


@router.get("/executors")
async def list_executors(
    services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    views = await services.executors.views(principal)
    response.headers["X-Total-Count"] = str(len(views))  # lists carry their total, as documented
    return [render.executor(v) for v in views]


@router.get("/admin/executors")
async def active_executors(
    services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    views = await services.executors.views(principal, active_only=True)
    response.headers["X-Total-Count"] = str(len(views))
    return [render.executor(v) for v in views]


@router.get("/admin/stats")
async def admin_stats(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    stats = await services.stats.queue(principal)
    active = await services.executors.views(principal, active_only=True)
    return {
        "jobs_by_status": {s.value: n for s, n in stats.jobs_by_status.items()},
        "pending_by_priority": {
            name: stats.pending_by_priority.get(value, 0) for value, name in QUEUE_CLASSES.items()
        },
        "active_executors": len(active),
    }


@router.get("/health")
async def health(services: ServicesDep) -> JSON:
    """Unauthenticated; 503 when the database does not answer, so a load balancer
    checking it takes this replica out until the database is back."""
    try:
        await services.store.ping()
    except Unavailable as exc:
        body = {"status": "unhealthy", "database": "disconnected", "error": exc.message}
        return JSON(body, 503, {"Retry-After": str(exc.retry_after)})
    return JSON({"status": "healthy", "database": "connected"})


@router.get("/metrics")
async def metrics(services: ServicesDep, principal: PrincipalDep) -> Response:
    require(principal, Action.READ)
    stats = await services.stats.queue()
    services.metrics.set_queue_gauges(stats.jobs_by_status, stats.pending_by_priority)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)
