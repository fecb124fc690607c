"""``follow`` of every SDK client: a job's live output that outlives the replica serving it.

One Server-Sent-Events stream at a time. When it breaks before the job's end
event (its replica died, or stopped and closed it), the follow asks again, on
the replica in use (``corral.failover`` moves on from one that refuses), with
the id of the last event it passed on as ``Last-Event-ID``: the server goes on
right after it (any replica can, the output is in the database), so no byte is
lost and none repeated. Once ``RetryWindow`` is over it raises
``CorralConnectionError``, as a follow that could not start does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx

from corral.client.errors import error_for, unreachable
from corral.client.events import EndEvent, OutputEvent
from corral.client.sse import SseParser
from corral.client.window import RetryWindow

CONNECT_SECONDS = 10.0


class StreamEnded(Exception):
    """The server closed the stream before the end event: a replica that was stopping."""

    def __init__(self) -> None:
        super().__init__("the output stream ended before the job did")


def follow(
    http: httpx.Client, url: str, path: str, read_timeout: float | None, retry_for: float
) -> Iterator[OutputEvent | EndEvent]:
    """The events of ``path``'s stream and of its sequels, up to the ``EndEvent``."""
    window = RetryWindow(retry_for)
    limits = httpx.Timeout(read_timeout, connect=CONNECT_SECONDS)
    last_id: str | None = None
    while True:
        parser = SseParser(last_id)
        failure: Exception = StreamEnded()
        try:
            with http.stream("GET", path, headers=resume(last_id), timeout=limits) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_for(response)
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        window.progressed()
                        yield event
                        if isinstance(event, EndEvent):
                            return
        except httpx.TransportError as exc:
            failure = exc
        except httpx.HTTPError as exc:
            raise unreachable(url, exc) from exc
        last_id = parser.last_id
        pause = window.pause()
        if pause is None:
            raise unreachable(url, failure) from failure
        time.sleep(pause)


async def afollow(
    http: httpx.AsyncClient, url: str, path: str, read_timeout: float | None, retry_for: float
) -> AsyncIterator[OutputEvent | EndEvent]:
    """``follow`` for ``httpx.AsyncClient``."""
    window = RetryWindow(retry_for)
    limits = httpx.Timeout(read_timeout, connect=CONNECT_SECONDS)
    last_id: str | None = None
    while True:
        parser = SseParser(last_id)
        failure: Exception = StreamEnded()
        try:
            async with http.stream(
                "GET", path, headers=resume(last_id), timeout=limits
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response)
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        window.progressed()
                        yield event
                        if isinstance(event, EndEvent):
                            return
        except httpx.TransportError as exc:
            failure = exc
        except httpx.HTTPError as exc:
            raise unreachable(url, exc) from exc
        last_id = parser.last_id
        pause = window.pause()
        if pause is None:
            raise unreachable(url, failure) from failure
        await asyncio.sleep(pause)


def resume(last_id: str | None) -> dict[str, str] | None:
    """The headers that ask for the stream after the event ``last_id`` (None: from the start)."""
    return {"Last-Event-ID": last_id} if last_id is not None else None
