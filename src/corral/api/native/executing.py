"""Executor routes: claim, heartbeat, complete, fail, batched results, release, output."""

from __future__ import annotations

import codecs
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.longpoll import watched
from corral.api.native import render
from corral.api.native.errors import NativeRoute, status_of
from corral.api.native.schemas import (
    Claim,
    Complete,
    ExecutorCall,
    Fail,
    OutputChunk,
    ResultReport,
)
from corral.api.ranges import ATTEMPT, COUNT
from corral.api.responses import JSON
from corral.api.streaming import HeldStream
from corral.api.timefmt import iso
from corral.domain.jobs import ClaimRequest, Job
from corral.domain.principals import Principal
from corral.errors import InvalidInput
from corral.services.container import Services
from corral.services.output import STREAMS, OutputEvent, Position, whole_characters
from corral.store.leases_port import Report

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["executors"])
# A follow stream's event id, sent back by a follower resuming after it (``_position``).
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)]


@router.post("/jobs/claim", responses={204: {"description": "No job available"}})
async def claim(
    body: Claim, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    began = time.time()
    claim_request = ClaimRequest(
        executor_id=body.executor_id,
        principal_id=principal.id,
        executor_ip=body.executor_ip or (request.client.host if request.client else None),
        labels=frozenset(body.labels),
        limit=body.n or 1,
        project_id=body.project_id,
        runnable_only=body.runnable_only,
    )
    async with watched(request) as caller:
        jobs = await services.leases.claim(
            principal, claim_request, body.wait, still_wanted=caller.there, gone=caller.gone
        )
        hung_up = body.wait > 0 and not await caller.there()
    if not jobs:
        return Response(status_code=204)
    if hung_up:
        # The caller hung up while we leased: hand the jobs straight back.
        for job in jobs:
            ref = services.leases.fence(principal, body.executor_id, job.attempt)
            await services.leases.release(job.id, ref)
        return Response(status_code=204)
    # claim_waited: seconds this request waited before the lease began, so a worker can
    # time the lease from when it sent the claim rather than from when it read the answer.
    answers = [
        {
            **render.claimed(j),
            "claim_waited": math.floor(max(0.0, (j.started_at or began) - began) * 1000) / 1000,
        }
        for j in jobs
    ]
    return JSON(answers[0] if body.n is None else answers)


def _status_body(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "attempt": job.attempt,
        "lease_expires_at": iso(job.lease_expires_at),
        "cancel_requested": job.cancel_requested,
    }


@router.put("/jobs/{job_id}/heartbeat")
async def heartbeat(
    job_id: str, body: ExecutorCall, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    ref = services.leases.fence(principal, body.executor_id, body.attempt)
    return _status_body(await services.leases.heartbeat(job_id, ref))


async def _report(
    services: Services, principal: Principal, job_id: str, body: Complete
) -> dict[str, Any]:
    ref = services.leases.fence(principal, body.executor_id, body.attempt)
    job = await services.leases.finish(job_id, ref, body.outcome())
    return {**_status_body(job), "exit_code": job.exit_code, "error_message": job.error_message}


@router.put("/jobs/{job_id}/complete")
async def complete(
    job_id: str, body: Complete, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await _report(services, principal, job_id, body)


@router.put("/jobs/{job_id}/fail")
async def fail(
    job_id: str, body: Fail, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return await _report(services, principal, job_id, body)


@router.post("/jobs/results")
async def results(
    body: list[ResultReport], services: ServicesDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    if len(body) > 1000:
        raise InvalidInput("at most 1000 results per request")
    reports = [
        Report(r.job_id, services.leases.fence(principal, r.executor_id, r.attempt), r.outcome())
        for r in body
    ]
    answers: list[dict[str, Any]] = []
    for report, outcome in zip(reports, await services.leases.finish_many(reports), strict=True):
        if isinstance(outcome, Job):
            answers.append({"job_id": report.job_id, "ok": True, "status": outcome.status.value})
        else:
            answers.append(
                {
                    "job_id": report.job_id,
                    "ok": False,
                    "error": outcome.message,
                    "code": status_of(outcome),
                }
            )
    return answers


@router.post("/jobs/{job_id}/release")
async def release(
    job_id: str, body: ExecutorCall, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    ref = services.leases.fence(principal, body.executor_id, body.attempt)
    return _status_body(await services.leases.release(job_id, ref))


@router.post("/jobs/{job_id}/output")
async def append_output(
    job_id: str, body: OutputChunk, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    ref = services.leases.fence(principal, body.executor_id, body.attempt)
    written = await services.leases.append_output(
        job_id, ref, body.stream, body.data.encode(), at=body.offset, truncated=body.truncated
    )
    return {"stream": body.stream, "size": written.size, "truncated": written.truncated}


@router.get("/jobs/{job_id}/output")
async def read_output(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    stream: str = "stdout",
    offset: Annotated[int, Query(ge=0, le=1 << 62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1 << 20)] = 65536,
) -> dict[str, Any]:
    piece, job = await services.output.read(principal, job_id, stream, offset, limit)
    # A page that ends inside a character leaves its first bytes to the next page, so
    # pages joined are the text itself; one too short to hold any whole character
    # goes as it is, so that paging always moves on.
    data = piece.data
    if offset + len(data) < piece.size:
        data = whole_characters(data) or data
    return {
        "stream": stream,
        "offset": offset,
        "data": data.decode(errors="replace"),
        "next_offset": offset + len(data),
        "size": piece.size,
        "truncated": piece.truncated,
        "attempt": piece.attempt,
        "status": job.status.value,
    }


@router.get("/jobs/{job_id}/output/interleaved")
async def interleaved_output(
    job_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    """The current attempt's stdout and stderr as chunks in arrival order, each with the
    time the dispatcher stored it (`corral logs`, `--timestamps`)."""
    job, pieces = await services.output.interleaved(principal, job_id)
    decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in STREAMS}
    chunks = [
        {
            "stream": p.stream,
            "at": iso(p.arrived_at) if p.arrived_at else None,
            "data": decoders[p.stream].decode(p.data),
        }
        for p in pieces
    ]
    return {
        "job_id": job.id,
        "attempt": job.attempt,
        "status": job.status.value,
        "stdout_truncated": job.stdout.truncated,
        "stderr_truncated": job.stderr.truncated,
        "chunks": chunks,
    }


@router.get("/jobs/{job_id}/output/follow", response_class=StreamingResponse)
async def follow_output(
    job_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    last_event_id: LastEventId = None,
) -> StreamingResponse:
    """Server-Sent Events; each caller holds at most ``max_streams_per_principal`` (429).

    Each output event's ``id`` is the position after it; a follower that lost its
    stream sends the last one back as ``Last-Event-ID`` (any replica) and gets what
    comes after it, so nothing is missed or repeated.
    """
    start = _position(last_event_id) if last_event_id else None
    events = await services.output.follow(principal, job_id, start)
    return HeldStream(
        _sse(events),
        services.streams.acquire(principal),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(events: AsyncIterator[OutputEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        if event.kind == "keepalive":
            yield b": keepalive\n\n"
        elif event.kind == "output":
            data = {
                "stream": event.stream,
                "offset": event.offset,
                "data": event.data.decode(errors="replace"),
            }
            head = b"event: output\nid: " + _event_id(event.after).encode()
            yield head + b"\ndata: " + orjson.dumps(data) + b"\n\n"
        else:
            job = event.job
            assert job is not None
            data = {
                "status": job.status.value,
                "exit_code": job.exit_code,
                "error_message": job.error_message,
            }
            yield b"event: end\ndata: " + orjson.dumps(data) + b"\n\n"


def _event_id(after: Position | None) -> str:
    """``ATTEMPT:STDOUT:STDERR``, the position after an output event."""
    assert after is not None
    return f"{after.attempt}:{after.stdout}:{after.stderr}"


def _position(event_id: str) -> Position:
    """The position an event id names; 400 for one no follow stream sent."""
    parts = event_id.split(":")
    if len(parts) == 3 and all(p.isascii() and p.isdigit() for p in parts):
        attempt, stdout, stderr = (int(p) for p in parts)
        if attempt <= ATTEMPT and max(stdout, stderr) <= COUNT:
            return Position(attempt, stdout, stderr)
    raise InvalidInput(
        "Last-Event-ID is not the id of an output event: ATTEMPT:STDOUT:STDERR",
        field="Last-Event-ID",
    )
