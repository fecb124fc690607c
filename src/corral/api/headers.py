"""Headers every response carries, whatever dialect or route produced it.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which adds a
task and a memory stream per request) that only rewrites the response start:
- ``X-Request-ID``: the caller's, when it sent one of sane length, else a fresh id;
- ``X-Response-Time-ms``: time spent until the headers were sent;
- ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``;
- ``Cache-Control: no-store`` on API answers, which are live state, never cacheable.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_REQUEST_ID = 128


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
