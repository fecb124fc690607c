"""What a long-poll route tells the lease service about its caller.

A claim that waits for work must not lease a job to a caller who hung up: nobody
would hear of the lease until it expired. The service asks ``still_there`` before a
claim that follows a wait, and waits on ``hung_up`` beside the work it waits for, so
a claim whose caller left stops waiting at once (a submit can then no longer hand it
a job: ``services/handoff.py``).
"""

from __future__ import annotations

from starlette.requests import Request


async def still_there(request: Request) -> bool:
    return not await request.is_disconnected()


async def hung_up(request: Request) -> None:
    """Return once the caller hung up. After the body, all an ASGI server may still
    send the app is ``http.disconnect``."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
