"""Headers every response carries, whatever dialect or route produced it.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which adds a
task and a memory stream per request) that only rewrites the response start:
- ``X-Request-ID``: the caller's, when it sent one of sane length, else a fresh id;
- ``X-Response-Time-ms``: time spent until the headers were sent;
- ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``;
- ``Cache-Control: no-store`` on API answers, which are live state, never cacheable;
- ``X-RateLimit-Limit/-Remaining/-Reset`` when a rate limit was checked for the request.
  The limiter (``ratelimit.py``) runs deep inside the route, in a dependency; it
  leaves its figures in the scope's state, which is the one object shared with
  this layer, and they are read here when the response starts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.ratelimit import STATE_KEY, Figures

MAX_REQUEST_ID = 128
# What a browser script on an allowed origin may read (CORS hides all but a few by default).
CORS_EXPOSED = [
    "X-Request-ID",
    "X-Response-Time-ms",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-Total-Count",
    "Content-Disposition",
    "X-Content-SHA256",
]


class ResponseHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        api = scope.get("path", "").startswith("/api")
        # Made here if the server gave none, so that the route writes into this very dict.
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                extra = [
                    (b"x-request-id", request_id),
                    (b"x-response-time-ms", f"{elapsed:.2f}".encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                ]
                if api and not _has(message, b"cache-control"):
                    extra.append((b"cache-control", b"no-store"))
                figures = state.get(STATE_KEY)
                if isinstance(figures, Figures):
                    extra.extend(figures.headers())
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _request_id(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id" and 0 < len(value) <= MAX_REQUEST_ID and value.isascii():
            return bytes(value)
    return uuid.uuid4().hex.encode()


def _has(message: MutableMapping[str, Any], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in message.get("headers", []))
