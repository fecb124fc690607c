"""CMD Executor's ``/api/files``: zip uploads in, and the bytes back out to users and workers.

An upload is streamed from the socket through the multipart parser into the
store, so neither memory nor disk ever holds a whole file. The document gives
this endpoint its own error title ("Invalid file"), oversize included as a 400
rather than the 413 the rest of Corral answers, so those are rendered here in
this dialect's body rather than through the generic mapping.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.exceptions import HTTPException

from corral.api.content_disposition import attachment
from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.cmd.errors import CmdRoute, error_response
from corral.api.multipart import (
    MULTIPART_SLACK,
    MultipartFile,
    check_declared_length,
    is_multipart,
)
from corral.api.responses import JSON
from corral.api.timefmt import iso
from corral.domain.files import StoredFile
from corral.domain.principals import Principal
from corral.errors import InvalidInput, NotFound, TooLarge
from corral.services.container import Services
from corral.services.files import DEFAULT_CONTENT_TYPE, Download

router = APIRouter(route_class=CmdRoute, tags=["cmd-executor"])

FIELD = "file"
_UNITS = (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10))


def file_url(f: StoredFile) -> str:
    return f"/uploads/{f.id}/{quote(f.filename, safe='')}"


def _created(f: StoredFile) -> dict[str, Any]:
    return {
        "success": True,
        "fileId": f.id,
        "filename": f.filename,
        "size": f.size,
        "uploadedAt": iso(f.created_at),
        "url": file_url(f),
        "expiresAt": iso(f.expires_at),
    }


def size_label(limit: int) -> str:
    """The limit as the document words it ("500MB" for 500 MiB), exact for any setting."""
    for unit, size in _UNITS:
        if limit >= size and limit % size == 0:
            return f"{limit // size}{unit}"
    return f"{limit} bytes"


def _too_large(limit: int) -> JSON:
    message = f"File size exceeds {size_label(limit)} limit"
    return error_response(400, "Invalid file", message, {"limit": limit}, "FILE_TOO_LARGE")


def _invalid_file(exc: InvalidInput, limit: int) -> JSON:
    if isinstance(exc, TooLarge) and "quota" in exc.context:
        return error_response(400, "Invalid file", exc.message, exc.context, "QUOTA_EXCEEDED")
    if isinstance(exc, TooLarge):
        return _too_large(limit)
    return error_response(400, "Invalid file", exc.message, exc.context, "INVALID_FILE")


def _not_found(file_id: str) -> NotFound:
    return NotFound("File not found", fileId=file_id)


async def _receive(request: Request, services: Services, principal: Principal) -> StoredFile:
    if not is_multipart(request):
        raise InvalidInput("the upload must be multipart/form-data with a file field", field=FIELD)
    check_declared_length(request, services.files.max_upload, MULTIPART_SLACK)
    part = MultipartFile(request, FIELD)
    await part.open()
    if not part.filename:
        raise InvalidInput("the file field carries no filename", field=FIELD)
    return await services.files.upload(principal, part.filename, part.content_type, part.chunks())


@router.post("/api/files/upload", status_code=201)
async def upload_file(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSON:
    services.files.check_upload(principal)  # a viewer is refused before any byte is read
    limit = services.files.max_upload
    try:
        stored = await _receive(request, services, principal)
    except InvalidInput as exc:
        return _invalid_file(exc, limit)
    except HTTPException as exc:  # the app-wide body bound, past the file's own limit
        if exc.status_code != 413:
            raise
        return _too_large(limit)
    return JSON(_created(stored), status_code=201)


def content_type(f: StoredFile) -> str:
    """What the uploader said, else what the name suggests (``project.zip``: application/zip)."""
    if f.content_type and f.content_type != DEFAULT_CONTENT_TYPE:
        return f.content_type
    guessed, _ = mimetypes.guess_type(f.filename, strict=False)
    return guessed or DEFAULT_CONTENT_TYPE


def _stream(download: Download) -> StreamingResponse:
    f = download.file
    headers = {
        "Content-Length": str(f.size),
        "Content-Disposition": attachment(f.filename),
        "X-Content-SHA256": f.sha256,
    }
    return StreamingResponse(download.chunks, media_type=content_type(f), headers=headers)


@router.get("/api/files/download/{file_id}", response_model=None)
async def download_file(
    file_id: str, services: ServicesDep, principal: PrincipalDep
) -> StreamingResponse | JSON:
    try:
        download = await services.files.fetch(principal, file_id)
    except NotFound:
        raise _not_found(file_id) from None
    return _stream(download)


@router.get("/uploads/{file_id}/{filename}", response_model=None)
async def upload_url(
    file_id: str, filename: str, services: ServicesDep, principal: PrincipalDep
) -> StreamingResponse | JSON:
    """The ``url`` an upload answered, which jobs carry as ``fileUrl``; the name must match."""
    try:
        download = await services.files.fetch(principal, file_id)
    except NotFound:
        raise _not_found(file_id) from None
    if download.file.filename != filename:  # its chunks were never started: nothing to close
        raise _not_found(file_id)
    return _stream(download)
