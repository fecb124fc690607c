"""The one mechanism every dialect uses to turn errors into its own error body.

A dialect subclasses ``DialectRoute`` and names two renderers; the route wraps
each handler, so domain errors and validation failures raised anywhere below a
route (dependencies included) come out in that dialect's shape and status.
So do the ``HTTPException``s that come from below the handler rather than from
routes (which never build them): the body limit raised inside ``receive``, and
FastAPI's own 400 for a body it could not read.

FastAPI parses a JSON body before any dependency runs, so a body that is not
JSON at all would answer 400 before the caller is even authenticated. On a
route that needs a caller, such a failure first asks who is calling: a caller
who would be refused gets that refusal (401/403/429), never the 400.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from corral import errors
from corral.api.bodylimit import BodyTooLarge

# Status of an HTTPException -> the domain error each dialect already knows how to render.
HTTP_KINDS: dict[int, type[errors.CorralError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthenticated,
    403: errors.Forbidden,
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.TooLarge,
    422: errors.InvalidInput,
    503: errors.Unavailable,
}


class DialectRoute(APIRoute):
    @staticmethod
    def render_domain(exc: errors.CorralError) -> Response:
        raise NotImplementedError

    @staticmethod
    def render_validation(exc: RequestValidationError) -> Response:
        raise NotImplementedError

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        render_domain, render_validation = type(self).render_domain, type(self).render_validation

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except errors.CorralError as exc:
                return render_domain(exc)
            except RequestValidationError as exc:
                unread = any(e.get("type") == "json_invalid" for e in exc.errors())
                refused = await _refusal_first(request) if unread else None
                return render_domain(refused) if refused else render_validation(exc)
            except HTTPException as exc:
                refused = await _refusal_first(request) if exc.status_code == 400 else None
                return render_domain(refused) if refused else render_http_error(exc, render_domain)

        return guarded


async def _refusal_first(request: Request) -> errors.CorralError | None:
    """The refusal an authenticated route would give this caller, if any: checked only
    on failures raised before the dependencies ran (reading the body)."""
    from corral.api.deps import principal_of  # deps builds on the dialects' routes
    from corral.api.route_rights import RIGHTS, route_key

    if route_key(request) not in RIGHTS:
        return None
    try:
        await principal_of(request, request.app.state.services)
    except errors.CorralError as exc:
        return exc
    return None


def render_http_error(
    exc: HTTPException, render_domain: Callable[[errors.CorralError], Response]
) -> Response:
    """In the dialect's shape, keeping the exception's own status and headers."""
    context = {"limit": exc.limit} if isinstance(exc, BodyTooLarge) else {}
    kind = HTTP_KINDS.get(exc.status_code, errors.CorralError)
    response = render_domain(kind(str(exc.detail), **context))
    response.status_code = exc.status_code
    response.headers.update(exc.headers or {})
    return response


def first_validation_error(exc: RequestValidationError) -> tuple[str | None, str]:
    """The field (dotted, without the body/query/path prefix) and message of the first error."""
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    if first.get("type") == "json_invalid":
        return None, "request body is not valid JSON"
    return ".".join(location) or None, str(first.get("msg", "invalid request"))
