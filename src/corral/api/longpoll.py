"""What a long-poll route tells the lease service about its caller.

A claim that waits for work must not lease a job to a caller who hung up: nobody
would hear of the lease until it expired. The service asks ``there`` before a claim
that follows a wait, and waits on ``gone`` beside the work it waits for, so a claim
whose caller left stops waiting at once (a submit can then no longer hand it a job:
``services/handoff.py``).

One task per long poll watches for the hang-up, and the route reads what it saw
without waiting. Asking the server each time (Starlette's ``is_disconnected``) costs
a cancelled read, several turns of the event loop after a submit handed the claim its
job: the submitter's answer then always left before the worker's, which is the one a
job's start waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import Request


class Caller:
    """The client of one long-poll request, watched from its first wait until the
    route answers (a claim that finds work at once never starts the watch)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._watch: asyncio.Future[None] | None = None

    async def there(self) -> bool:
        """Whether the caller is still connected, as far as the server has told us (a
        claim that never waited asks the server, as it is the only one to ask then)."""
        if self._watch is None:
            return not await self._request.is_disconnected()
        return not self._watch.done()

    async def gone(self) -> None:
        """Return once the caller hung up (cancelling this wait leaves the watch on)."""
        if self._watch is None:
            self._watch = asyncio.ensure_future(_hung_up(self._request))
        await asyncio.shield(self._watch)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()


@contextlib.asynccontextmanager
async def watched(request: Request) -> AsyncIterator[Caller]:
    caller = Caller(request)
    try:
        yield caller
    finally:
        caller.close()


async def _hung_up(request: Request) -> None:
    """After the body, all an ASGI server may still send the app is ``http.disconnect``."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
