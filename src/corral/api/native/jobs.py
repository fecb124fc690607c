"""Job routes for submitters and viewers: submit, bulk, list, details, cancel."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.native import render
from corral.api.native.errors import NativeRoute, status_of
from corral.api.native.schemas import BulkCancel, SubmitJob
from corral.api.responses import JSON
from corral.domain import priority as prio
from corral.domain.jobs import Job
from corral.domain.states import JobStatus
from corral.errors import CorralError, InvalidInput, Unauthenticated
from corral.services.jobs import Idempotency
from corral.store.base import JobFilter, JobQuery

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["jobs"])
ID_CHARS = r"^[0-9A-Za-z-]+$"
MAX_SEARCH_OFFSET = 10000  # a search walks rows from the newest: deep offsets cost


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


async def _idempotency(request: Request, key: str | None) -> Idempotency | None:
    if key is None:
        return None
    return Idempotency(key, hashlib.sha256(await request.body()).hexdigest())


@router.post("/jobs", status_code=201)
async def submit_job(
    body: SubmitJob,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    submitted = await services.jobs.submit(
        principal,
        [body.to_draft()],
        idempotency=await _idempotency(request, idempotency_key),
        render=render.render_created,
    )
    if submitted.replay is not None:
        return _replay(submitted.replay.body, submitted.replay.status_code)
    return _replay(render.render_created(submitted.jobs), 201)


@router.post("/jobs/bulk", status_code=201)
async def submit_bulk(
    body: list[SubmitJob],
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    if not body:
        raise InvalidInput("at least one job is required")
    if len(body) > 10000:
        raise InvalidInput("at most 10000 jobs per request")
    drafts = []
    for index, item in enumerate(body):
        try:
            drafts.append(item.to_draft())
        except InvalidInput as exc:
            raise InvalidInput(f"job {index}: {exc.message}", index=index, **exc.context) from exc
    submitted = await services.jobs.submit(
        principal,
        drafts,
        idempotency=await _idempotency(request, idempotency_key),
        render=render.render_bulk,
    )
    if submitted.replay is not None:
        return _replay(submitted.replay.body, submitted.replay.status_code)
    return _replay(render.render_bulk(submitted.jobs), 201)


def _replay(body: bytes, status: int) -> Response:
    return Response(body, status_code=status, media_type="application/json")


@router.get("/jobs")
async def list_jobs(
    services: ServicesDep,
    principal: PrincipalDep,
    response: Response,
    status: str | None = None,
    type: str | None = None,
    priority: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1 << 62)] = 0,
    project_id: str | None = None,
    batch_id: str | None = None,
    executor_id: str | None = None,
    label: Annotated[str | None, Query(max_length=100)] = None,
    text: Annotated[str | None, Query(max_length=200)] = None,
    id_prefix: Annotated[str | None, Query(min_length=1, max_length=36, pattern=ID_CHARS)] = None,
    created_after: datetime | None = None,
) -> list[dict[str, Any]]:
    query = JobQuery(
        status=_status(status),
        executor_id=executor_id,
        label=label,
        project_id=project_id,
        priority=prio.parse_priority(priority) if priority else None,
        text=text or None,
        id_prefix=id_prefix.lower() if id_prefix else None,
        created_after=created_after.timestamp() if created_after else None,
    )
    if _searching(query):
        jobs = await _search(services, principal, query, type, batch_id, limit, offset)
    else:
        flt = JobFilter(
            status=query.status,
            type=type,
            priority=query.priority,
            project_id=project_id,
            batch_id=batch_id,
            executor_id=executor_id,
        )
        jobs, total = await services.jobs.list_jobs(principal, flt, limit, offset)
        response.headers["X-Total-Count"] = str(total)
    reasons = await services.placement.reasons(jobs)
    return [{**render.summary(j), "pending_reason": reasons.get(j.id)} for j in jobs]


def _searching(query: JobQuery) -> bool:
    """Filters the counted list cannot take: these walk the keyset pages instead."""
    return any(
        v is not None for v in (query.label, query.text, query.id_prefix, query.created_after)
    )


async def _search(
    services: ServicesDep,
    principal: PrincipalDep,
    query: JobQuery,
    type: str | None,
    batch_id: str | None,
    limit: int,
    offset: int,
) -> list[Job]:
    """A filtered search, newest first; it counts no total (X-Total-Count is left out),
    since counting the matches is the part that grows with the table."""
    if type is not None or batch_id is not None:
        raise InvalidInput(
            "type and batch_id do not combine with label, text, id_prefix or created_after",
            field="type" if type is not None else "batch_id",
        )
    if offset > MAX_SEARCH_OFFSET:
        raise InvalidInput(
            f"offset must be at most {MAX_SEARCH_OFFSET} with a search filter", field="offset"
        )
    jobs = await services.jobs.search(principal, query, limit + offset)
    return jobs[offset:]


def _status(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in JobStatus)
        raise InvalidInput(f"status must be one of {allowed}", field="status") from None


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    details = await services.jobs.details(principal, job_id)
    reasons = await services.placement.reasons([details.job])
    return {**render.details(details), "pending_reason": reasons.get(job_id)}


@router.post("/jobs/{job_id}/resubmit", status_code=201)
async def resubmit_job(
    job_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The same spec again as a new job (the dashboard's Resubmit, `corral resubmit`)."""
    fresh = await services.jobs.resubmit(principal, job_id)
    return {**render.created(fresh), "resubmitted_from": job_id}


@router.delete("/jobs/{job_id}")
async def cancel_job(job_id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    job = await services.jobs.cancel(principal, job_id)
    return {"id": job.id, "status": job.status.value, "cancel_requested": job.cancel_requested}


@router.post("/jobs/bulk/cancel")
async def bulk_cancel(body: BulkCancel, services: ServicesDep, principal: PrincipalDep) -> JSON:
    results = await services.jobs.cancel_many(principal, body.job_ids)
    errors = []
    for job_id, result in zip(body.job_ids, results, strict=True):
        if isinstance(result, Unauthenticated):
            raise result
        if isinstance(result, CorralError):
            errors.append({"job_id": job_id, "error": result.message, "code": status_of(result)})
    return JSON({"cancelled": len(results) - len(errors), "failed": len(errors), "errors": errors})
