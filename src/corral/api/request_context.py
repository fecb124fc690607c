"""The id of the request being served, for error bodies that must quote it.

TaskDriver's errors carry a ``correlationId``; the headers middleware sets this
per request (a ContextVar follows the request's task), so renderers that only
see the error can still name the request it belongs to.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

_REQUEST_ID: ContextVar[str | None] = ContextVar("corral_request_id", default=None)


def set_request_id(request_id: str) -> None:
    _REQUEST_ID.set(request_id)


def current_request_id() -> str:
    return _REQUEST_ID.get() or uuid.uuid4().hex
