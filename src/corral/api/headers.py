"""Headers every response carries, whatever dialect or route produced it.

A plain ASGI middleware (not Starlette's ``BaseHTTPMiddleware``, which adds a
task and a memory stream per request) that only rewrites the response start:
- ``X-Request-ID``: the caller's, when it sent one of sane length, else a fresh id;
- ``X-Response-Time-ms``: time spent until the headers were sent;
- ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``;
- ``Cache-Control: no-cache, no-store, must-revalidate``, ``Pragma: no-cache`` and
  ``Expires: 0`` (Octaskly's three) on API answers (``/api``, ``/health``,
  ``/metrics``) that set no Cache-Control of their own: they are live state, and
  the older headers keep HTTP/1.0 caches and proxies from keeping them either;
- ``X-RateLimit-Limit/-Remaining/-Reset`` when a rate limit was checked for the request.
  The limiter (``ratelimit.py``) runs deep inside the route, in a dependency; it
  leaves its figures in the scope's state, which is the one object shared with
  this layer, and they are read here when the response starts.

It also counts each answer (outcome and time) in the app's ``HttpCounters``, and
puts the request id where error renderers that quote it can find it
(``request_context.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.ratelimit import STATE_KEY, Figures
from corral.api.request_context import set_request_id
from corral.services.metrics import HttpCounters

MAX_REQUEST_ID = 128
API_PREFIXES = ("/api", "/health", "/metrics")
NO_CACHE = (
    (b"cache-control", b"no-cache, no-store, must-revalidate"),
    (b"pragma", b"no-cache"),
    (b"expires", b"0"),
)
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
        self._counters: HttpCounters | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        set_request_id(request_id.decode())
        api = scope.get("path", "").startswith(API_PREFIXES)
        counters = self._counters or self._find_counters(scope)
        # Made here if the server gave none, so that the route writes into this very dict.
        state: dict[str, Any] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                if counters is not None:
                    counters.record(message["status"], elapsed)
                extra = [
                    (b"x-request-id", request_id),
                    (b"x-response-time-ms", f"{elapsed:.2f}".encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                ]
                if api and not _has(message, b"cache-control"):
                    extra.extend(NO_CACHE)
                figures = state.get(STATE_KEY)
                if isinstance(figures, Figures):
                    extra.extend(figures.headers())
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _find_counters(self, scope: Scope) -> HttpCounters | None:
        """The app's counters, looked up once: the middleware is built per app, after it."""
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        counters = getattr(getattr(services, "metrics", None), "http", None)
        if isinstance(counters, HttpCounters):
            self._counters = counters
        return self._counters


def _request_id(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id" and 0 < len(value) <= MAX_REQUEST_ID and value.isascii():
            return bytes(value)
    return os.urandom(16).hex().encode()  # as random as a UUID4's hex, without the object


def _has(message: MutableMapping[str, Any], name: bytes) -> bool:
    return any(key.lower() == name for key, _ in message.get("headers", []))
