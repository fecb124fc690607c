"""Request body limits, enforced as the bytes arrive rather than after they are all in memory.

A pure ASGI middleware that wraps ``receive``: a body whose ``Content-Length``
already exceeds the route's limit fails at the first read, and a chunked body
fails at the first piece that takes it past the limit, so a client can never
make the server buffer more than the limit. The failure is raised from inside
``receive`` (not answered here) so that it reaches the route that reads the
body and comes out in that route's dialect shape (``routing.py``). It must be
an ``HTTPException``: FastAPI turns any other error met while parsing a body
into a 400.

Upload routes stream files into the store and get the upload limit; every other
body (JSON commands, results, output chunks) gets the much smaller JSON limit.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.api.multipart import MULTIPART_SLACK

# The one list of paths whose bodies are files. Keep it in step with the routes
# that stream a body to the store (grep for ``raw_body`` and ``MultipartFile``).
UPLOAD_PATHS = re.compile(
    r"^/api/v1/files/?$"  # native input archives
    r"|^/api/v1/jobs/[^/]+/artifacts/?$"  # native artifacts, from workers
    r"|^/api/files/upload/?$"  # CMD Executor's zip uploads
    r"|^/submit/?$"  # the dashboard's submit form, with its input archive
)


def is_upload_path(path: str) -> bool:
    return UPLOAD_PATHS.match(path) is not None


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds the limit of {limit} bytes")
        self.limit = limit


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        # Upload routes check the file's own size against max_upload_bytes and say
        # so precisely; this outer bound leaves room for multipart framing.
        self.max_upload_body = max_upload_bytes + MULTIPART_SLACK

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = is_upload_path(scope.get("path", ""))
        limit = self.max_upload_body if upload else self.max_json_bytes
        await self.app(scope, _limited(receive, limit, _declared_length(scope)), send)


def _limited(receive: Receive, limit: int, declared: int | None) -> Receive:
    received = 0
    finished = False

    async def limited_receive() -> Message:
        nonlocal received, finished
        if finished:  # e.g. a streaming response listening for the disconnect
            return await receive()
        if declared is not None and declared > limit:
            raise BodyTooLarge(limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
            finished = not message.get("more_body", False)
        return message

    return limited_receive


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
