"""``/ui/events``: one Server-Sent Events stream that says *what* changed, never polls.

The stream waits on the hub's generation counters and writes only when one
moved: ``jobs`` (a job changed state), ``workers`` (an executor registered,
heartbeated or left). Pages then fetch fresh fragments; a job's own page also
follows its output on the API's SSE stream. Bursts are coalesced: at most one message per topic per
``COALESCE`` seconds. A page that nobody changes costs the server a parked
coroutine and nothing else.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import ViewerDep
from corral.api.deps import ServicesDep
from corral.api.streaming import HeldStream
from corral.auth.policy import Action, require
from corral.services.events import Hub, Signal

router = APIRouter(route_class=PageRoute, include_in_schema=False)
COALESCE = 0.3
KEEPALIVE = 300.0  # a comment now and then, so idle proxies keep the stream open


@router.get("/ui/events")
async def events(
    viewer: ViewerDep,
    services: ServicesDep,
    topics: str = "jobs",
) -> StreamingResponse:
    require(viewer.principal, Action.READ)
    hub = services.hub
    watched: dict[str, Signal] = {}
    names = {t.strip() for t in topics.split(",")}
    if "jobs" in names:
        watched["jobs"] = hub.changes
    if "workers" in names:
        watched["workers"] = hub.fleet
    headers = {"X-Accel-Buffering": "no"}
    slot = services.streams.acquire(viewer.principal)
    return HeldStream(_stream(hub, watched), slot, media_type="text/event-stream", headers=headers)


async def _stream(hub: Hub, watched: dict[str, Signal]) -> AsyncIterator[str]:
    seen = {name: signal.generation for name, signal in watched.items()}
    yield "retry: 2000\n\n"
    while not hub.closing and watched:
        waits = [
            asyncio.ensure_future(signal.wait(seen[name], KEEPALIVE))
            for name, signal in watched.items()
        ]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if hub.closing:
            return
        if all(signal.generation == seen[name] for name, signal in watched.items()):
            yield ": keepalive\n\n"
            continue
        await asyncio.sleep(COALESCE)  # let a burst settle into one message
        for name, signal in watched.items():
            if signal.generation != seen[name]:
                seen[name] = signal.generation
                yield f"event: {name}\ndata: {{}}\n\n"
