"""Octaskly's error body, ``{"error", "status", "timestamp"}``, and its statuses.

``OctasklyRoute`` wraps every handler of this dialect, so domain errors and
validation failures raised below a route come out in this shape. Messages are
the document's own words ("Task not found", "Missing or invalid authentication
token"...); a 400 keeps the core's detail after the document's title, since
"Invalid parameter value" alone does not tell a client which value.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi.exceptions import RequestValidationError

from corral import errors
from corral.api.responses import JSON
from corral.api.routing import DialectRoute
from corral.api.timefmt import iso

# (kind, status, message; None keeps the exception's own); the first match wins.
KINDS: list[tuple[type[errors.CorralError], int, str | None]] = [
    (errors.Unauthenticated, 401, "Missing or invalid authentication token"),
    (errors.Forbidden, 403, "Insufficient permissions"),
    (errors.NotFound, 404, "Task not found"),
    (errors.TooLarge, 413, None),
    (errors.InvalidInput, 400, None),
    (errors.Conflict, 409, None),
    (errors.MethodNotAllowed, 405, None),
    (errors.RateLimited, 429, "Rate limit exceeded"),
    (errors.Unavailable, 503, "Service unavailable"),
    (errors.CorralError, 400, None),
]
# The document's 400 titles; a core message without one is filed under the last.
TITLES = ("Invalid command format", "Missing required field", "Malformed JSON")
INVALID_VALUE = "Invalid parameter value"


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "status": status, "timestamp": iso(time.time())}


def error_response(status: int, message: str) -> JSON:
    return JSON(error_body(status, message), status_code=status)


def from_domain(exc: errors.CorralError) -> JSON:
    status, message = classify(exc)
    return with_headers(error_response(status, message), exc)


def classify(exc: errors.CorralError) -> tuple[int, str]:
    """The status and message of a domain error, for any body that speaks Octaskly."""
    status, fixed = next((s, m) for kind, s, m in KINDS if isinstance(exc, kind))
    return status, fixed or _message(exc)


def with_headers(response: JSON, exc: errors.CorralError) -> JSON:
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:  # 429 and 503: when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _message(exc: errors.CorralError) -> str:
    if isinstance(exc, errors.TooLarge):
        limit = exc.context.get("limit")
        return (
            f"Request body too large (limit {limit} bytes)" if limit else "Request body too large"
        )
    if isinstance(exc, errors.InvalidInput) and not exc.message.startswith(
        (*TITLES, INVALID_VALUE)
    ):
        return f"{INVALID_VALUE}: {exc.message}"
    return exc.message


def from_validation(exc: RequestValidationError) -> JSON:
    return error_response(400, validation_message(exc))


def validation_message(exc: RequestValidationError) -> str:
    """The document's 400 titles: malformed JSON, a missing field, a bad command, a bad value."""
    problems = exc.errors()
    first: dict[str, Any] = dict(problems[0]) if problems else {}
    kind = first.get("type")
    where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(where)
    if kind == "json_invalid":
        message = "Malformed JSON: the request body is not valid JSON"
    elif kind == "missing":
        message = f"Missing required field: {field or 'body'}"
    elif where[:1] == ["command"]:
        message = f"Invalid command format: {_reason(first)}"
    elif not field:
        message = f"{INVALID_VALUE}: the request body must be a JSON object"
    else:
        message = f"{INVALID_VALUE}: {field}: {_reason(first)}"
    return message


def _reason(problem: dict[str, Any]) -> str:
    """Pydantic's message without the "Value error, " it puts before our validators' own."""
    return str(problem.get("msg", "invalid")).removeprefix("Value error, ")


class OctasklyRoute(DialectRoute):
    render_domain = staticmethod(from_domain)
    render_validation = staticmethod(from_validation)
