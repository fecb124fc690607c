"""The one mechanism every dialect uses to turn errors into its own error body.

A dialect subclasses ``DialectRoute`` and names two renderers; the route wraps
each handler, so domain errors and validation failures raised anywhere below a
route (dependencies included) come out in that dialect's shape and status.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from corral import errors


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
                return render_validation(exc)

        return guarded


def first_validation_error(exc: RequestValidationError) -> tuple[str | None, str]:
    """The field (dotted, without the body/query/path prefix) and message of the first error."""
    first = exc.errors()[0] if exc.errors() else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    if first.get("type") == "json_invalid":
        return None, "request body is not valid JSON"
    return ".".join(location) or None, str(first.get("msg", "invalid request"))
