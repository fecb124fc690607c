"""File routes: upload an input archive, download it; a job's artifacts in and out.

Bodies are streamed through to the store as they arrive (``multipart.py``) and
downloads are streamed chunk by chunk, so no file is ever whole in memory. A
download may ask for one byte range (``byte_ranges.py``), which is how the SDK
goes on with a download that was cut off instead of starting it over; every
download answer names the file's version (``ETag``, its sha256) for that.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from corral.api.byte_ranges import entity_tag, requested_span
from corral.api.content_disposition import attachment
from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.multipart import (
    MULTIPART_SLACK,
    MultipartFile,
    check_declared_length,
    is_multipart,
    raw_body,
)
from corral.api.native.errors import NativeRoute
from corral.api.ranges import ATTEMPT
from corral.api.responses import JSON
from corral.api.timefmt import iso
from corral.domain.files import StoredFile
from corral.errors import InvalidInput
from corral.services.files import Download, WorkerCall

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["files"])
Attempt = Annotated[int | None, Query(ge=1, le=ATTEMPT)]


def file_body(f: StoredFile) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f.id,
        "filename": f.filename,
        "size": f.size,
        "sha256": f.sha256,
        "created_at": iso(f.created_at),
        "expires_at": iso(f.expires_at),
    }
    if f.job_id is not None:
        body.update(job_id=f.job_id, attempt=f.attempt, path=f.path)
    return body


RangeHeader = Annotated[
    str | None,
    Header(
        alias="Range",
        description="One byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`): 206 with those "
        "bytes. Several ranges, or a header that does not parse, are ignored (200).",
    ),
]
IfRangeHeader = Annotated[
    str | None,
    Header(
        alias="If-Range",
        description="The ETag of the version already partly held: the range is sent only "
        "if the file still has it, else the whole file (200).",
    ),
]
DOWNLOAD_ANSWERS: dict[int | str, dict[str, Any]] = {
    206: {"description": "The byte range asked for, with its Content-Range"},
    416: {"description": "The range starts past the end; Content-Range: bytes */size"},
}


def _stream(download: Download, range_header: str | None, if_range: str | None) -> Response:
    """The whole file (200), or the one range it was asked for (206)."""
    f = download.file
    etag = entity_tag(f.sha256)
    span = requested_span(range_header, if_range, f.size, etag)
    headers = {
        "Content-Length": str(f.size),
        "Content-Disposition": attachment(f.filename),
        "X-Content-SHA256": f.sha256,  # always the whole file's, as ETag
        "ETag": etag,
        "Accept-Ranges": "bytes",
    }
    if span is None:
        return StreamingResponse(download.read(), media_type=f.content_type, headers=headers)
    headers["Content-Length"] = str(span.stop - span.start)
    headers["Content-Range"] = span.content_range
    body = download.read(span.start, span.stop)
    return StreamingResponse(body, status_code=206, media_type=f.content_type, headers=headers)


@router.post("/files", status_code=201)
async def upload_file(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> JSON:
    """A multipart ``file`` field, or the raw body named by ``?filename=``."""
    limit = services.files.max_upload
    if is_multipart(request):
        check_declared_length(request, limit, MULTIPART_SLACK)
        part = MultipartFile(request)
        await part.open()
        name = filename or part.filename or ""
        stored = await services.files.upload(principal, name, part.content_type, part.chunks())
    else:
        if not filename:
            raise InvalidInput("filename is required for a raw upload", field="filename")
        check_declared_length(request, limit)
        kind = request.headers.get("content-type")
        stored = await services.files.upload(principal, filename, kind, raw_body(request))
    return JSON(file_body(stored), status_code=201)


@router.get("/files/{file_id}", response_class=StreamingResponse, responses=DOWNLOAD_ANSWERS)
async def download_file(
    file_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
    job_id: str | None = None,
    executor_id: str | None = None,
    attempt: Attempt = None,
) -> Response:
    """Workers add ``job_id``, ``executor_id`` and ``attempt``: the job whose input it is."""
    worker = WorkerCall(executor_id, attempt) if executor_id else None
    download = await services.files.download(principal, file_id, job_id, worker)
    return _stream(download, range_header, if_range)


@router.post("/jobs/{job_id}/artifacts", status_code=201)
async def upload_artifact(
    job_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    path: Annotated[str, Query(min_length=1, max_length=1024)],
    executor_id: Annotated[str, Query(min_length=1, max_length=200)],
    attempt: Attempt = None,
) -> JSON:
    check_declared_length(request, services.files.max_upload)
    worker = WorkerCall(executor_id, attempt)
    stored = await services.files.upload_artifact(
        principal, job_id, path, worker, raw_body(request)
    )
    return JSON(file_body(stored), status_code=201)


@router.get("/jobs/{job_id}/artifacts")
async def list_artifacts(
    job_id: str, services: ServicesDep, principal: PrincipalDep, response: Response
) -> list[dict[str, Any]]:
    found = await services.files.artifacts(principal, job_id)
    response.headers["X-Total-Count"] = str(len(found))
    return [file_body(f) for f in found]


@router.get(
    "/jobs/{job_id}/artifacts/{artifact_id}",
    response_class=StreamingResponse,
    responses=DOWNLOAD_ANSWERS,
)
async def download_artifact(
    job_id: str,
    artifact_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    range_header: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    download = await services.files.download_artifact(principal, job_id, artifact_id)
    return _stream(download, range_header, if_range)
