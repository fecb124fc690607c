"""CMD Executor's ``/api/workers``: register, heartbeat, list, get, unregister.

Registering needs an admin token or a join token (a worker-role token from
``corral token create --role worker``) and answers with a token bound to the
new worker, which it then sends as ``x-worker-token``.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.cmd import render
from corral.api.dialects.cmd.errors import CmdRoute
from corral.api.dialects.cmd.schemas import HeartbeatBody, RegisterBody
from corral.api.ranges import COUNT
from corral.api.responses import JSON
from corral.api.timefmt import iso
from corral.domain.workers import ExecutorInfo
from corral.errors import InvalidInput

router = APIRouter(prefix="/api/workers", route_class=CmdRoute, tags=["cmd-executor"])

MAX_PAGE = 1000
WORKER_STATUSES = ("online", "offline", "error")


@router.post("/register", status_code=201)
async def register(
    body: RegisterBody, request: Request, principal: PrincipalDep, services: ServicesDep
) -> JSON:
    metadata = body.metadata.model_dump(by_alias=True, exclude_none=True)
    info = ExecutorInfo(
        executor_id=body.worker_id,
        principal_id=principal.id,
        hostname=body.hostname,
        ip=request.client.host if request.client else None,
        cpu_count=body.cpu_count,
        memory_mb=body.total_memory_mb,
        os=body.metadata.os_type,
        labels=tuple(dict.fromkeys(body.metadata.tags)),
        concurrency=1,
        metadata=metadata,
    )
    registration = await services.executors.register_exclusive(principal, info)
    answer = {
        "success": True,
        "workerId": body.worker_id,
        "token": registration.token,
        "registeredAt": iso(registration.executor.registered_at),
    }
    return JSON(answer, status_code=201)


@router.post("/heartbeat")
async def heartbeat(body: HeartbeatBody, principal: PrincipalDep, services: ServicesDep) -> JSON:
    beat = await services.executors.heartbeat(principal, body.worker_id, body.status)
    check_in = services.executors.offline_after / 3
    return JSON(
        {
            "success": True,
            "serverTime": iso(time.time()),
            "nextCheckIn": int(check_in * 1000),
            "runningJobIds": [job.id for job in beat.renewed],
            "cancelJobIds": beat.cancel,
        }
    )


@router.get("/list")
async def list_workers(
    principal: PrincipalDep,
    services: ServicesDep,
    status: str | None = None,
    tags: str | None = None,
    limit: Annotated[int, Query(ge=1, le=COUNT)] = 100,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
) -> JSON:
    if status is not None and status not in WORKER_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(WORKER_STATUSES)}", field="status")
    wanted = {t.strip() for t in (tags or "").split(",") if t.strip()}
    views = [
        v
        for v in await services.executors.views(principal)
        if (status is None or render.worker_status(v) == status)
        and wanted.issubset(v.executor.info.labels)
    ]
    limit = min(limit, MAX_PAGE)
    items = [render.worker_summary(v) for v in views[offset : offset + limit]]
    return render.page(items, "workers", len(views), limit, offset)


@router.get("/{worker_id}")
async def get_worker(worker_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    view = await services.executors.view(principal, worker_id)
    return JSON({"success": True, "worker": render.worker_detail(view)})


@router.delete("/{worker_id}")
async def unregister(worker_id: str, principal: PrincipalDep, services: ServicesDep) -> JSON:
    await services.executors.remove(principal, worker_id)
    return JSON({"success": True, "message": "Worker unregistered"})
