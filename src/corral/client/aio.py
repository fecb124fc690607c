"""``AsyncCorralClient``: ``CorralClient``'s API for asyncio programs, on ``httpx.AsyncClient``.

::

    async with AsyncCorralClient() as corral:
        job = await corral.submit(command="echo hello")
        done = await corral.wait(job.id, timeout=60)

Same credentials, requests (``calls.py``), models and errors as the sync client;
only the sending differs.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import httpx

from corral.client import calls, downloads, following
from corral.client.credentials import resolve
from corral.client.errors import WaitTimeout, unreachable
from corral.client.models import (
    Cancellation,
    EndEvent,
    Executor,
    Job,
    OutputEvent,
    OutputPage,
    StoredFile,
)
from corral.client.session import DEFAULT_RETRY_FOR, async_http, session_headers
from corral.client.sync import USER_AGENT

UPLOAD_PIECE = 1 << 20


class AsyncCorralClient:
    """A session with one dispatcher; ``async with`` it or ``await close()``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry_for: float = DEFAULT_RETRY_FOR,
    ) -> None:
        self.url, token = resolve(url, token)
        self.retry_for = retry_for
        self.http = async_http(self.url, session_headers(token, USER_AGENT), timeout, retry_for)

    async def __aenter__(self) -> AsyncCorralClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    # ---- jobs ------------------------------------------------------------------------

    async def submit(
        self, *, command: str | None = None, idempotency_key: str | None = None, **fields: Any
    ) -> Job:
        """See ``CorralClient.submit``."""
        answer = await self._send(calls.submit(command, idempotency_key, fields))
        return Job.model_validate(answer)

    async def get(self, job_id: str) -> Job:
        return Job.model_validate(await self._send(calls.get_job(job_id)))

    async def list(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0, **filters: Any
    ) -> builtins.list[Job]:
        answer = await self._send(calls.list_jobs(status, limit, offset, filters))
        return [Job.model_validate(row) for row in answer]

    async def cancel(self, job_id: str) -> Cancellation:
        answer = await self._send(calls.cancel(job_id))
        return Cancellation.model_validate(answer or {"id": job_id, "status": "cancelled"})

    async def wait(self, job_id: str, timeout: float | None = None) -> Job:  # noqa: ASYNC109
        """See ``CorralClient.wait``; other tasks run while it waits. ``timeout`` as in the
        sync client (not ``asyncio.timeout``): expiry raises ``WaitTimeout`` with the
        job's status then, rather than a bare cancellation."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause: float | None = None
        while True:
            job = await self.get(job_id)
            left = None if deadline is None else deadline - time.monotonic()
            if job.finished:
                return job
            if left is not None and left <= 0:
                raise WaitTimeout(job_id, timeout or 0.0, job.status)
            pause = calls.next_pause(pause, left)
            await asyncio.sleep(pause)

    async def executors(self) -> builtins.list[Executor]:
        return [Executor.model_validate(row) for row in await self._send(calls.executors())]

    # ---- output ----------------------------------------------------------------------

    async def output(
        self, job_id: str, stream: str = "stdout", offset: int = 0, limit: int = 65536
    ) -> OutputPage:
        answer = await self._send(calls.output(job_id, stream, offset, limit))
        return OutputPage.model_validate(answer)

    async def read_output(self, job_id: str, stream: str = "stdout") -> str:
        pieces: builtins.list[str] = []
        offset = 0
        while True:
            page = await self.output(job_id, stream, offset, 1 << 20)
            pieces.append(page.data)
            if page.at_end:
                return "".join(pieces)
            offset = page.next_offset

    def follow(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[OutputEvent | EndEvent]:
        """``async for event in corral.follow(job_id)``: output, then an ``EndEvent``;
        it goes on from another replica as the sync client's does."""
        path = calls.follow_path(job_id)
        return following.afollow(self.http, self.url, path, timeout, self.retry_for)

    # ---- files -----------------------------------------------------------------------

    async def upload(self, path: str | Path, filename: str | None = None) -> StoredFile:
        """Upload a file streamed from disk (read off the event loop)."""
        source = Path(path)
        request = calls.upload(filename or source.name)
        fh = await asyncio.to_thread(source.open, "rb")
        try:
            answer = await self._send(request, content=_pieces(fh))
        finally:
            fh.close()
        return StoredFile.model_validate(answer)

    async def artifacts(self, job_id: str) -> builtins.list[StoredFile]:
        answer = await self._send(calls.artifacts(job_id))
        return [StoredFile.model_validate(row) for row in answer]

    async def download_artifact(self, job_id: str, artifact_id: str, dest: str | Path) -> Path:
        return await self._download(calls.artifact_path(job_id, artifact_id), Path(dest))

    async def download_file(self, file_id: str, dest: str | Path) -> Path:
        return await self._download(calls.file_path(file_id), Path(dest))

    # ---- plumbing --------------------------------------------------------------------

    async def _send(self, request: calls.Request, **extra: Any) -> Any:
        try:
            response = await self.http.request(
                request.method, request.path, **request.options(), **extra
            )
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc
        return calls.answer(response)

    async def _download(self, path: str, dest: Path) -> Path:
        return await downloads.adownload(self.http, self.url, path, dest, self.retry_for)


async def _pieces(fh: BinaryIO) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(fh.read, UPLOAD_PIECE):
        yield piece
