"""The executor-queue error shape, ``{"error", "context"}``, and its status codes.

``NativeRoute`` wraps every native handler, so domain errors and validation
failures raised anywhere below a route come out in this dialect's shape.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from corral import errors
from corral.api.responses import JSON
from corral.api.routing import DialectRoute, first_validation_error

STATUS: list[tuple[type[errors.CorralError], int]] = [
    (errors.NotFound, 404),
    (errors.TooLarge, 413),
    (errors.InvalidInput, 400),
    (errors.InvalidTransition, 400),
    (errors.StaleAttempt, 409),
    (errors.AlreadyExists, 409),
    (errors.IdempotencyMismatch, 422),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.MethodNotAllowed, 405),
    (errors.RangeNotSatisfiable, 416),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
    (errors.CorralError, 400),
]


def status_of(exc: errors.CorralError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def error_response(status: int, message: str, context: dict[str, Any]) -> JSON:
    return JSON({"error": message, "context": context}, status_code=status)


def from_domain(exc: errors.CorralError) -> JSON:
    response = error_response(status_of(exc), exc.message, exc.context)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:  # 429 and 503: when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.RangeNotSatisfiable):  # RFC 9110: how long the file is
        response.headers["Content-Range"] = f"bytes */{exc.size}"
    return response


def from_validation(exc: RequestValidationError) -> JSON:
    field, message = first_validation_error(exc)
    text = f"{field}: {message}" if field else message
    return error_response(400, text, {"field": field} if field else {})


class NativeRoute(DialectRoute):
    render_domain = staticmethod(from_domain)
    render_validation = staticmethod(from_validation)
