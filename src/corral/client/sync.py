"""``CorralClient``: the typed, synchronous SDK.

::

    from corral.client import CorralClient

    with CorralClient() as corral:  # CORRAL_URL / CORRAL_TOKEN, else `corral login`
        job = corral.submit(command="echo hello")
        done = corral.wait(job.id, timeout=60)
        print(done.status, done.exit_code, done.stdout)

Answers are models (``models.py``), failures ``CorralAPIError`` subclasses
(``errors.py``); ``AsyncCorralClient`` (``aio.py``) is the same API with ``await``.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

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
from corral.client.session import DEFAULT_RETRY_FOR, session_headers, sync_http

USER_AGENT = "corral-sdk"


class CorralClient:
    """A session with one dispatcher; use as a context manager or call ``close()``.

    ``url`` and ``token`` default to ``CORRAL_URL`` and ``CORRAL_TOKEN``, then to the
    login ``corral login`` saved (for its own server only), then to a local server.
    ``url`` may list replicas, comma-separated: a call moves on to the next when one
    cannot be reached, and connection errors and 502/503/504 are retried for up to
    ``retry_for`` seconds (only what is safe to repeat; see ``session.py``)."""

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
        self.http = sync_http(self.url, session_headers(token, USER_AGENT), timeout, retry_for)

    def __enter__(self) -> CorralClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ---- jobs ------------------------------------------------------------------------

    def submit(
        self, *, command: str | None = None, idempotency_key: str | None = None, **fields: Any
    ) -> Job:
        """Submit one job (any native field: ``binary_url``, ``labels``, ``timeout``,
        ``env_variables``, ``secret_env``...). The answer has the id, type, status and
        creation time; ``get`` or ``wait`` for the rest."""
        return Job.model_validate(self._send(calls.submit(command, idempotency_key, fields)))

    def get(self, job_id: str) -> Job:
        """The whole job: spec, state, stdout/stderr as stored, attempts."""
        return Job.model_validate(self._send(calls.get_job(job_id)))

    def list(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0, **filters: Any
    ) -> builtins.list[Job]:
        """Jobs, newest first, with their summary fields; ``filters``: type, priority..."""
        answer = self._send(calls.list_jobs(status, limit, offset, filters))
        return [Job.model_validate(row) for row in answer]

    def cancel(self, job_id: str) -> Cancellation:
        answer = self._send(calls.cancel(job_id))
        return Cancellation.model_validate(answer or {"id": job_id, "status": "cancelled"})

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (completed, failed or cancelled) and return
        it whole; ``WaitTimeout`` after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause: float | None = None
        while True:
            job = self.get(job_id)
            left = None if deadline is None else deadline - time.monotonic()
            if job.finished:
                return job
            if left is not None and left <= 0:
                raise WaitTimeout(job_id, timeout or 0.0, job.status)
            pause = calls.next_pause(pause, left)
            time.sleep(pause)

    def executors(self) -> builtins.list[Executor]:
        return [Executor.model_validate(row) for row in self._send(calls.executors())]

    # ---- output ----------------------------------------------------------------------

    def output(
        self, job_id: str, stream: str = "stdout", offset: int = 0, limit: int = 65536
    ) -> OutputPage:
        """One page of stored output, from ``offset``."""
        return OutputPage.model_validate(self._send(calls.output(job_id, stream, offset, limit)))

    def read_output(self, job_id: str, stream: str = "stdout") -> str:
        """The whole stored stream, page by page."""
        pieces: builtins.list[str] = []
        offset = 0
        while True:
            page = self.output(job_id, stream, offset, 1 << 20)
            pieces.append(page.data)
            if page.at_end:
                return "".join(pieces)
            offset = page.next_offset

    def follow(
        self, job_id: str, *, timeout: float | None = None
    ) -> Iterator[OutputEvent | EndEvent]:
        """The job's output as it arrives (Server-Sent Events), ending with an ``EndEvent``.

        A stream cut off with its replica goes on from another, after the last event
        given (``following.py``); ``timeout``: seconds without a byte (None: no limit)."""
        path = calls.follow_path(job_id)
        return following.follow(self.http, self.url, path, timeout, self.retry_for)

    # ---- files -----------------------------------------------------------------------

    def upload(self, path: str | Path, filename: str | None = None) -> StoredFile:
        """Upload a file (an input archive) streamed from disk; submit a job with
        ``input_file_id=answer.id`` to have it extracted into the job's directory."""
        source = Path(path)
        request = calls.upload(filename or source.name)
        with source.open("rb") as fh:
            return StoredFile.model_validate(self._send(request, content=fh))

    def artifacts(self, job_id: str) -> builtins.list[StoredFile]:
        """The files a job's attempts saved from its ``outputs``."""
        return [StoredFile.model_validate(row) for row in self._send(calls.artifacts(job_id))]

    def download_artifact(self, job_id: str, artifact_id: str, dest: str | Path) -> Path:
        """Stream one artifact to the file ``dest``; returns ``dest``. A download cut
        off is tried again, and never leaves a partial file (``downloads.py``)."""
        return self._download(calls.artifact_path(job_id, artifact_id), Path(dest))

    def download_file(self, file_id: str, dest: str | Path) -> Path:
        return self._download(calls.file_path(file_id), Path(dest))

    # ---- plumbing --------------------------------------------------------------------

    def _send(self, request: calls.Request, **extra: Any) -> Any:
        try:
            response = self.http.request(request.method, request.path, **request.options(), **extra)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc
        return calls.answer(response)

    def _download(self, path: str, dest: Path) -> Path:
        return downloads.download(self.http, self.url, path, dest, self.retry_for)
