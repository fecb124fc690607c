"""TaskDriver's error body: ``{"success": false, "error", "timestamp", "correlationId"}``,
with ``validationDetails`` (field, message, value) on 422.

``TaskDriverRoute`` wraps every handler of this dialect, so domain errors and
validation failures raised below a route come out in this shape. The
``correlationId`` is the request's ``X-Request-ID``.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.exceptions import RequestValidationError

from corral import errors
from corral.api.request_context import current_request_id
from corral.api.responses import JSON, plain
from corral.api.routing import DialectRoute
from corral.api.timefmt import iso

# (kind, status); the first match wins, so subclasses come first.
STATUS: list[tuple[type[errors.CorralError], int]] = [
    (errors.NotFound, 404),
    (errors.TooLarge, 413),
    (errors.InvalidInput, 422),
    (errors.Conflict, 409),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.MethodNotAllowed, 405),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
    (errors.CorralError, 400),
]


def error_response(status: int, message: str, **extra: Any) -> JSON:
    body = {
        "success": False,
        "error": message,
        "timestamp": iso(time.time()),
        "correlationId": current_request_id(),
        **extra,
    }
    return JSON(body, status_code=status)


def from_domain(exc: errors.CorralError) -> JSON:
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    extra: dict[str, Any] = {}
    field = exc.context.get("field")
    if status == 422 and field:
        detail = {"field": field, "message": exc.message, "value": exc.context.get("value")}
        extra["validationDetails"] = [detail]
        message = f"Validation failed: {field}: {exc.message}"
    else:
        message = exc.message
    response = error_response(status, message, **extra)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:  # 429 and 503: when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def from_validation(exc: RequestValidationError) -> JSON:
    """Malformed JSON is a 400; a well-formed body that breaks the rules is a 422."""
    problems = exc.errors()
    if any(p.get("type") == "json_invalid" for p in problems):
        return error_response(400, "request body is not valid JSON")
    details = [
        {
            "field": ".".join(
                str(part) for part in p.get("loc", ()) if part not in ("body", "query", "path")
            ),
            "message": str(p.get("msg", "invalid")),
            "value": _json_safe(p.get("input")) if p.get("type") != "missing" else None,
        }
        for p in problems
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return error_response(422, f"Validation failed: {summary}", validationDetails=details)


def _json_safe(value: Any) -> Any:
    """The offending value as given, when JSON can carry it (an integer past 64 bits
    comes back as text: ``responses.plain``); raw bodies come as text."""
    if isinstance(value, bytes | bytearray):
        return bytes(value[:1000]).decode("utf-8", "replace")
    return plain(value)


class TaskDriverRoute(DialectRoute):
    render_domain = staticmethod(from_domain)
    render_validation = staticmethod(from_validation)
