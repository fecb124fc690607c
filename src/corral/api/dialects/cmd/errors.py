"""CMD Executor's error body, ``{"error", "message", "details", "code"}``, and its statuses.

``CmdRoute`` wraps every handler of this dialect, so domain errors and
validation failures raised below a route come out in this shape.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from corral import errors
from corral.api.responses import JSON
from corral.api.routing import DialectRoute, first_validation_error

# (kind, status, error title, code); the first match wins, so subclasses come first.
KINDS: list[tuple[type[errors.CorralError], int, str, str]] = [
    (errors.InvalidCredentials, 401, "Invalid credentials", "INVALID_CREDENTIALS"),
    (errors.Unauthenticated, 401, "Unauthorized", "UNAUTHORIZED"),
    (errors.Forbidden, 403, "Forbidden", "FORBIDDEN"),
    (errors.NotFound, 404, "Not found", "NOT_FOUND"),  # the document's capitalisation
    (errors.TooLarge, 413, "Payload Too Large", "PAYLOAD_TOO_LARGE"),
    (errors.InvalidInput, 400, "Invalid request", "VALIDATION_ERROR"),
    (errors.Conflict, 409, "Conflict", "CONFLICT"),
    (errors.MethodNotAllowed, 405, "Method Not Allowed", "METHOD_NOT_ALLOWED"),
    (errors.RateLimited, 429, "Too Many Requests", "RATE_LIMITED"),
    (errors.Unavailable, 503, "Service Unavailable", "SERVICE_UNAVAILABLE"),
    (errors.CorralError, 400, "Bad Request", "BAD_REQUEST"),
]


def error_response(
    status: int, title: str, message: str, details: dict[str, Any], code: str
) -> JSON:
    body = {"error": title, "message": message, "details": details, "code": code}
    return JSON(body, status_code=status)


def from_domain(exc: errors.CorralError) -> JSON:
    status, title, code = next((s, t, c) for kind, s, t, c in KINDS if isinstance(exc, kind))
    if isinstance(exc, errors.RateLimited):
        return rate_limited(exc, title, code)
    response = error_response(status, title, exc.message, exc.context, code)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:  # 503: when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def rate_limited(exc: errors.RateLimited, title: str, code: str) -> JSON:
    """The document's 429 body adds a top-level ``retryAfter`` to the usual four keys."""
    body = {
        "error": title,
        "message": exc.message,
        "retryAfter": exc.retry_after,
        "details": exc.context,
        "code": code,
    }
    return JSON(body, status_code=429, headers={"Retry-After": str(exc.retry_after)})


def from_validation(exc: RequestValidationError) -> JSON:
    """As the document shows: ``"error": "Invalid request", "message": "workerId is required"``."""
    field, message = first_validation_error(exc)
    details = {"field": field} if field else {}
    if field and message == "Field required":
        message = f"{field} is required"
    elif field:
        message = f"{field}: {message}"
    return error_response(400, "Invalid request", message, details, "VALIDATION_ERROR")


class CmdRoute(DialectRoute):
    render_domain = staticmethod(from_domain)
    render_validation = staticmethod(from_validation)
