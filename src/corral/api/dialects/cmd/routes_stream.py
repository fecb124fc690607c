"""CMD Executor's ``ws /api/jobs/stream``: job events pushed to watchers as they happen.

Browsers cannot set headers on a WebSocket, so besides the Bearer header and the
``auth_token`` cookie a ``?token=`` query parameter is accepted. A handshake
that fails authentication or authorization is refused with an HTTP answer
(401/403/404/429 in this dialect's error body) rather than accepted and then
closed, so a client learns why; servers without the denial-response extension
close with 1008 instead.

Events are those of every job, whichever replica it went through (another
replica's arrive relayed: ``services/event_relay.py``), from the moment of
subscription on: nothing is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, WebSocket
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from corral.api.deps import bearer_token, principal_of
from corral.api.dialects.cmd import render
from corral.api.dialects.cmd.errors import from_domain
from corral.api.timefmt import iso
from corral.domain.principals import Principal
from corral.errors import CorralError
from corral.services.container import Services
from corral.services.job_events import (
    Delivered,
    EventsDropped,
    JobFinished,
    JobOutput,
    JobStarted,
    Subscription,
)
from corral.services.streams import StreamSlot

router = APIRouter(tags=["cmd-executor"])

GOING_AWAY = 1001  # the server is stopping
POLICY_VIOLATION = 1008
DENIAL_EXTENSION = "websocket.http.response"


def frame(event: Delivered) -> dict[str, Any]:
    match event:
        case JobStarted(job=job, at=at):
            return {
                "type": "job.started",
                "jobId": job.id,
                "workerId": job.executor_id,
                "timestamp": iso(at),
            }
        case JobOutput(job_id=job_id, stream=stream, data=data, at=at):
            return {
                "type": "job.output",
                "jobId": job_id,
                "stream": stream,
                "data": data,
                "timestamp": iso(at),
            }
        case JobFinished(job=job, at=at):
            return {
                "type": "job.completed",
                "jobId": job.id,
                "status": render.job_status(job),
                "exitCode": job.exit_code,
                "timestamp": iso(at),
            }
        case EventsDropped(count=count):
            return {"type": "events.dropped", "count": count}


async def _principal(websocket: WebSocket, services: Services, token: str | None) -> Principal:
    """``?token=`` stands in for the Authorization header: a real header still wins,
    and either beats the cookie, which may be stale where the query token is not."""
    if not token or bearer_token(websocket) is not None:
        return await principal_of(websocket, services)
    header = (b"authorization", b"Bearer " + token.encode("latin-1", "replace"))
    scope = {**websocket.scope, "headers": [*websocket.scope["headers"], header]}
    return await principal_of(HTTPConnection(scope), services)


async def _subscribe(
    websocket: WebSocket, services: Services, job_id: str | None, token: str | None
) -> tuple[Subscription, StreamSlot]:
    """A watcher holds one of its principal's stream slots until the socket ends (429 past
    ``max_streams_per_principal``)."""
    principal = await _principal(websocket, services, token)
    subscription = services.hub.events.watch(principal, job_id)
    try:
        slot = services.streams.acquire(principal)
    except CorralError:
        subscription.close()
        raise
    if job_id is not None:
        try:  # subscribed first, so the job cannot finish unseen in between
            await services.jobs.get(principal, job_id)
        except CorralError:
            subscription.close()
            slot.release()
            raise
    return subscription, slot


async def _deny(websocket: WebSocket, exc: CorralError) -> None:
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(from_domain(exc))
    else:
        await websocket.close(code=POLICY_VIOLATION, reason=exc.message[:120])


async def _until_disconnect(websocket: WebSocket, subscription: Subscription) -> None:
    """The client leaving, or uvicorn closing the socket at shutdown, ends the stream.

    Uvicorn waits for every connection to finish before it runs the app's
    shutdown, so this, not the services stopping, is what lets a server with
    watchers stop promptly. Whatever the client sends is ignored.
    """
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        subscription.close()


async def _pump(websocket: WebSocket, subscription: Subscription) -> None:
    while (event := await subscription.get()) is not None:
        await websocket.send_text(orjson.dumps(frame(event)).decode())


@router.websocket("/api/jobs/stream")
async def job_stream(
    websocket: WebSocket,
    job_id: Annotated[str | None, Query(alias="jobId", max_length=200)] = None,
    token: Annotated[str | None, Query(max_length=4096)] = None,
) -> None:
    services: Services = websocket.app.state.services
    try:
        subscription, slot = await _subscribe(websocket, services, job_id, token)
    except CorralError as exc:
        await _deny(websocket, exc)
        return
    with slot, subscription:
        await websocket.accept()
        watcher = asyncio.create_task(_until_disconnect(websocket, subscription))
        try:
            await _pump(websocket, subscription)
            if services.hub.closing:  # the services stopped under a socket still open
                await websocket.close(code=GOING_AWAY)
        except WebSocketDisconnect:
            return  # the client went away while an event was being sent
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await watcher
