"""The SDK's exceptions: one base class, one subclass per kind of failure.

::

    CorralAPIError                 status (HTTP, 0 without an answer), message, context
    ├── CorralConnectionError      no answer: refused, reset, timed out, invalid JSON
    ├── InvalidRequest             400, 413, 422: the request itself is wrong
    ├── Unauthorized               401: no token, or one the server does not accept
    ├── Forbidden                  403: the token's role may not do this
    ├── NotFound                   404: no such job, file, artifact
    ├── Conflict                   409: the job's state does not allow it
    ├── RateLimited                429: ``retry_after`` seconds, when the server said
    ├── ServerError                5xx
    └── WaitTimeout                ``wait`` gave up: the job is still running

Callers that do not care which catch ``CorralAPIError``; ``str(exc)`` is one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


class CorralAPIError(Exception):
    """The server refused a request, or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0, context: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.context: dict[str, Any] = dict(context or {})

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


class CorralConnectionError(CorralAPIError):
    """No usable answer: the server is down, unreachable, too slow, or not Corral."""


class InvalidRequest(CorralAPIError):
    """400/413/422: ``context`` often names the offending ``field``."""


class Unauthorized(CorralAPIError):
    """401: missing, unknown, revoked or expired token."""


class Forbidden(CorralAPIError):
    """403: authenticated, but the role may not do this."""


class NotFound(CorralAPIError):
    """404."""


class Conflict(CorralAPIError):
    """409: e.g. cancelling a job that already finished."""


class RateLimited(CorralAPIError):
    """429: ``retry_after`` is the server's ``Retry-After`` in seconds, when given."""

    def __init__(
        self,
        message: str,
        status: int = 429,
        context: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message, status, context)
        self.retry_after = retry_after


class ServerError(CorralAPIError):
    """5xx: the server failed; retrying later may work."""


class WaitTimeout(CorralAPIError):
    """``wait(job_id, timeout=...)`` ran out of time; ``job_id`` is still not finished."""

    def __init__(self, job_id: str, timeout: float, status_now: str):
        super().__init__(f"job {job_id} still {status_now} after {timeout:g} s")
        self.job_id = job_id
        self.timeout = timeout
        self.status_now = status_now


_BY_STATUS: dict[int, type[CorralAPIError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
}


def error_for(response: httpx.Response) -> CorralAPIError:
    """The exception for an error answer, carrying the native ``{"error", "context"}``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        message = str(body["error"])
        context = body.get("context")
        context = context if isinstance(context, dict) else {}
    else:
        message = response.text.strip()[:200] or response.reason_phrase
        context = {}
    status = response.status_code
    if status == 429:
        return RateLimited(message, status, context, _seconds(response.headers.get("Retry-After")))
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else CorralAPIError)
    return kind(message, status, context)


def unreachable(url: str, exc: Exception) -> CorralConnectionError:
    return CorralConnectionError(f"cannot reach {url}: {exc}")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
