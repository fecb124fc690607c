"""A streaming response that holds a stream slot (``services/streams.py``) while it runs.

The slot is given back when the response ends, however it ends: finished,
client gone, server stopping, or never iterated at all (a client that hangs up
before the first byte leaves a generator that was never started, whose own
``finally`` would never run).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping

from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from corral.services.streams import StreamSlot


class HeldStream(StreamingResponse):
    def __init__(
        self,
        content: AsyncIterable[str | bytes],
        slot: StreamSlot,
        *,
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._slot.release()
