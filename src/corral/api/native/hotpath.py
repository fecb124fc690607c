"""The hottest routes, served without FastAPI's per-request machinery.

A job's life is its submit (alone or in bulk), then a worker's claim, heartbeats and
one report; on a busy dispatcher these requests are most of the traffic, and FastAPI's
layers (its middleware stack, route matching through every router, dependency solving)
cost more CPU than the work each does. This pure ASGI middleware answers them itself,
by calling the very same handlers (``executing.py``, ``jobs.py``) with the same
schemas, the same ``principal_of`` (authentication, rate limits, route rights) and the
same renderers, so the answers are the same, byte for byte.

It takes only the plain case: an exact method and path, a body declared as
``application/json`` that parses and validates. Anything else (another content type,
a body that is not JSON or fails its schema, a trailing slash, a ``root_path``) is
handed to FastAPI with the body replayed, so every error shape stays FastAPI's and
the dialect's own. Nothing is charged before that decision: authentication (and its
rate limits) runs only once the body is known good, as it would under FastAPI, where
a valid body's route runs its dependencies and then the handler.

It sits inside ``ResponseHeaders`` and ``BodyLimit`` (common headers, counters and
body limits apply as before) and in front of FastAPI's own stack.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral import errors
from corral.api.deps import principal_of
from corral.api.native import executing, jobs
from corral.api.native.errors import from_domain
from corral.api.native.schemas import (
    Claim,
    Complete,
    ExecutorCall,
    Fail,
    ResultReport,
    SubmitJob,
)
from corral.api.responses import JSON
from corral.api.routing import render_http_error
from corral.domain.principals import Principal
from corral.services.container import Services

JSON_TYPE = b"application/json"
Handler = Callable[[Request, Services, Principal, Any, str], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RouteKey:
    """What ``scope["route"]`` must tell ``route_rights`` and ``deps``: the template."""

    path: str


@dataclass(frozen=True, slots=True)
class HotRoute:
    method: str
    pattern: re.Pattern[str]
    route: RouteKey
    body: TypeAdapter[Any]
    handle: Handler
    unless: bytes | None  # a request header that sends the request to FastAPI


def _route(
    method: str, template: str, body: Any, handle: Handler, unless: bytes | None = None
) -> HotRoute:
    pattern = re.compile("^" + template.replace("{job_id}", "(?P<job_id>[^/]+)") + "$")
    return HotRoute(method, pattern, RouteKey(template), TypeAdapter(body), handle, unless)


# The handlers, called as FastAPI would call them; ``job_id`` is "" on routes without it.
async def _submit(request: Request, s: Services, p: Principal, body: Any, _: str) -> Any:
    return await jobs.submit_job(body, request, s, p, None)


async def _bulk(request: Request, s: Services, p: Principal, body: Any, _: str) -> Any:
    return await jobs.submit_bulk(body, request, s, p, None)


async def _claim(request: Request, s: Services, p: Principal, body: Any, _: str) -> Any:
    return await executing.claim(body, request, s, p)


async def _heartbeat(request: Request, s: Services, p: Principal, body: Any, job_id: str) -> Any:
    return await executing.heartbeat(job_id, body, s, p)


async def _complete(request: Request, s: Services, p: Principal, body: Any, job_id: str) -> Any:
    return await executing.complete(job_id, body, s, p)


async def _fail(request: Request, s: Services, p: Principal, body: Any, job_id: str) -> Any:
    return await executing.fail(job_id, body, s, p)


async def _results(request: Request, s: Services, p: Principal, body: Any, _: str) -> Any:
    return await executing.results(body, s, p)


ROUTES = (
    # A submit with an Idempotency-Key (a header FastAPI validates) goes to FastAPI.
    _route("POST", "/api/v1/jobs", SubmitJob, _submit, unless=b"idempotency-key"),
    _route("POST", "/api/v1/jobs/bulk", list[SubmitJob], _bulk, unless=b"idempotency-key"),
    _route("POST", "/api/v1/jobs/claim", Claim, _claim),
    _route("PUT", "/api/v1/jobs/{job_id}/heartbeat", ExecutorCall, _heartbeat),
    _route("PUT", "/api/v1/jobs/{job_id}/complete", Complete, _complete),
    _route("PUT", "/api/v1/jobs/{job_id}/fail", Fail, _fail),
    _route("POST", "/api/v1/jobs/results", list[ResultReport], _results),
)


class HotPaths:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _match(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, job_id = found
        try:
            raw = await _read_body(receive)
        except HTTPException as exc:  # the body limit, raised from inside receive
            await render_http_error(exc, from_domain)(scope, receive, send)
            return
        if raw is None:  # the client left before its body was in
            return
        body = _valid_body(route, raw)
        if body is None:  # FastAPI says what is wrong, its own way
            await self.app(scope, _replaying(raw, receive), send)
            return
        scope["route"] = route.route
        scope["path_params"] = {"job_id": job_id} if job_id else {}
        # The body is read: what the handler may still receive is the client leaving
        # (a long-poll claim asks whether its caller is still there before leasing),
        # and ``request.body()`` answers from the bytes read (Starlette's own cache).
        request = Request(scope, receive)
        request._body = raw
        response = await _answer(request, route, body, job_id)
        await response(scope, receive, send)


def _match(scope: Scope) -> tuple[HotRoute, str] | None:
    if scope["type"] != "http" or scope.get("root_path"):
        return None
    headers = dict(reversed(scope["headers"]))  # a repeated header: its first value, as Starlette
    if headers.get(b"content-type") != JSON_TYPE:
        return None
    method, path = scope["method"], scope["path"]
    for route in ROUTES:
        if route.method == method and (match := route.pattern.match(path)):
            if route.unless is not None and route.unless in headers:
                return None
            return route, match.groupdict().get("job_id") or ""
    return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(raw: bytes, receive: Receive) -> Receive:
    """The body once more, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return replay


def _valid_body(route: HotRoute, raw: bytes) -> Any:
    """The validated body, or None for anything FastAPI should answer.

    Parsed and validated in one pass by pydantic's own JSON parser, which reads what
    the json module (FastAPI's parser) reads the same way: integers past 64 bits stay
    integers (for the schema to refuse), NaN and Infinity are numbers, the last of a
    repeated key wins. What it refuses and the json module might not (a lone
    surrogate escape, a UTF-16 body) goes to FastAPI, which answers as it always did.
    """
    try:
        return route.body.validate_json(raw)
    except Exception:
        return None


async def _answer(request: Request, route: HotRoute, body: Any, job_id: str) -> Response:
    """As ``NativeRoute`` would answer: domain errors in the native shape, a dict or
    list as FastAPI renders a handler's return value."""
    services: Services = request.app.state.services
    try:
        principal = await principal_of(request, services)
        result = await route.handle(request, services, principal, body, job_id)
    except errors.CorralError as exc:
        return from_domain(exc)
    # The handlers return a Response or JSON-ready dicts and lists of text, integers,
    # booleans and None, which orjson renders byte for byte as FastAPI does (its
    # ``JSONResponse``: compact, UTF-8 unescaped), at a fraction of the cost.
    return result if isinstance(result, Response) else JSON(result)
