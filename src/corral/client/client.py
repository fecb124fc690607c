"""``JsonClient``: jobs, output and executors over httpx, answers as the server's JSON.

The CLI uses it: ``--json`` prints what the server said, fields this code does not
know included. Programs use the typed ``CorralClient`` (``sync.py``) instead.
Every failure (an error answer from the server or no answer at all) raises a
``CorralAPIError`` subclass carrying the server's ``{"error", "context"}`` and the
HTTP status (0 when the server could not be reached); see ``errors.py``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from corral.client import downloads, following
from corral.client.calls import answer
from corral.client.errors import CorralConnectionError, unreachable
from corral.client.events import EndEvent, OutputEvent
from corral.client.session import DEFAULT_RETRY_FOR, session_headers, sync_http

API = "/api/v1"
USER_AGENT = "corral-client"


class JsonClient:
    """A session with one dispatcher (``url`` may list replicas, comma-separated, as
    for ``CorralClient``); use as a context manager or call ``close()``."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry_for: float = DEFAULT_RETRY_FOR,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        self.http = sync_http(self.url, session_headers(token, USER_AGENT), timeout, retry_for)

    def __enter__(self) -> JsonClient:
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
    ) -> dict[str, Any]:
        """Submit one job (any native field: ``binary_url``, ``labels``, ``timeout``,
        ``env_variables``, ``secret_env``...); secrets come back masked in every answer."""
        body = {k: v for k, v in {"command": command, **fields}.items() if v is not None}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._object("POST", "/jobs", json=body, headers=headers)

    def get(self, job_id: str) -> dict[str, Any]:
        return self._object("GET", f"/jobs/{job_id}")

    def list(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0, **filters: Any
    ) -> builtins.list[dict[str, Any]]:
        """Jobs, newest first as the server orders them; ``filters``: type, priority..."""
        params = {"status": status, "limit": limit, "offset": offset, **filters}
        query = {k: v for k, v in params.items() if v is not None}
        return self._array("GET", "/jobs", params=query)

    def cancel(self, job_id: str) -> dict[str, Any]:
        answer = self._json("DELETE", f"/jobs/{job_id}")
        return answer if isinstance(answer, dict) else {"id": job_id}

    def executors(self) -> builtins.list[dict[str, Any]]:
        return self._array("GET", "/executors")

    def resubmit(self, job_id: str) -> dict[str, Any]:
        """Submit a job's spec again as a new job: ``{"id", "status", "resubmitted_from"}``."""
        return self._object("POST", f"/jobs/{job_id}/resubmit")

    def drain_executor(self, executor_id: str) -> dict[str, Any]:
        """Tell a worker to finish its running jobs, take no more, and exit."""
        return self._object("POST", f"/executors/{executor_id}/drain")

    def remove_executor(self, executor_id: str) -> dict[str, Any]:
        """Forget a worker and revoke its worker-bound tokens (admins)."""
        return self._object("DELETE", f"/executors/{executor_id}")

    # ---- schedules ---------------------------------------------------------

    def create_schedule(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body``: name, cron, job (a submit body) and the optional schedule fields."""
        return self._object("POST", "/schedules", json=dict(body))

    def schedules(self) -> builtins.list[dict[str, Any]]:
        return self._array("GET", "/schedules")

    def schedule(self, schedule_id: str) -> dict[str, Any]:
        return self._object("GET", f"/schedules/{schedule_id}")

    def update_schedule(self, schedule_id: str, **changes: Any) -> dict[str, Any]:
        return self._object("PATCH", f"/schedules/{schedule_id}", json=changes)

    def delete_schedule(self, schedule_id: str) -> None:
        self._json("DELETE", f"/schedules/{schedule_id}")

    # ---- files -----------------------------------------------------------------------

    def upload(self, path: str | Path, filename: str | None = None) -> dict[str, Any]:
        """Upload a file (an input archive) streamed from disk: ``{"id", "sha256", ...}``.

        Submit a job with ``input_file_id=answer["id"]`` to have it extracted into
        the job's working directory.
        """
        source = Path(path)
        params = {"filename": filename or source.name}
        headers = {"Content-Type": "application/octet-stream"}
        with source.open("rb") as fh:
            return self._object("POST", "/files", params=params, content=fh, headers=headers)

    def artifacts(self, job_id: str) -> builtins.list[dict[str, Any]]:
        """The files a job's attempts saved from its ``outputs``: id, path, attempt, size..."""
        return self._array("GET", f"/jobs/{job_id}/artifacts")

    def download_artifact(self, job_id: str, artifact_id: str, dest: str | Path) -> Path:
        """Stream one artifact to the file ``dest``; returns ``dest``."""
        return self._download(f"/jobs/{job_id}/artifacts/{artifact_id}", Path(dest))

    def download_file(self, file_id: str, dest: str | Path) -> Path:
        """Stream an uploaded file to ``dest``; returns ``dest``."""
        return self._download(f"/files/{file_id}", Path(dest))

    def _download(self, path: str, dest: Path) -> Path:
        return downloads.download(self.http, self.url, API + path, dest, self.retry_for)

    # ---- output ----------------------------------------------------------------------

    def output(
        self, job_id: str, stream: str = "stdout", offset: int = 0, limit: int = 65536
    ) -> dict[str, Any]:
        """One page of stored output: ``data``, ``next_offset``, ``size``, ``truncated``..."""
        params = {"stream": stream, "offset": offset, "limit": limit}
        return self._object("GET", f"/jobs/{job_id}/output", params=params)

    def read_output(self, job_id: str, stream: str = "stdout") -> str:
        """The whole stored stream, page by page."""
        pieces: builtins.list[str] = []
        offset = 0
        while True:
            page = self.output(job_id, stream, offset, 1 << 20)
            pieces.append(page["data"])
            if page["next_offset"] <= offset or page["next_offset"] >= page["size"]:
                return "".join(pieces)
            offset = page["next_offset"]

    def interleaved(self, job_id: str) -> dict[str, Any]:
        """The current attempt's output as ``chunks`` of both streams in arrival order,
        each ``{"stream", "at", "data"}``."""
        return self._object("GET", f"/jobs/{job_id}/output/interleaved")

    def follow(
        self, job_id: str, *, timeout: float | None = None
    ) -> Iterator[OutputEvent | EndEvent]:
        """Server-Sent Events of the job's output as it arrives, ending with an ``EndEvent``;
        a stream cut off with its replica goes on from another (``following.py``)."""
        path = f"{API}/jobs/{job_id}/output/follow"
        return following.follow(self.http, self.url, path, timeout, self.retry_for)

    # ---- workflows (docs/workflows.md) -----------------------------------------------

    def submit_workflow(
        self, document: dict[str, Any], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Submit ``{"name", "jobs": [{"key", ...submit fields, "depends_on"}]}`` whole;
        the answer maps each key to its job id."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._object("POST", "/workflows", json=document, headers=headers)

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._object("GET", f"/workflows/{workflow_id}")

    def workflows(self, limit: int = 50) -> builtins.list[dict[str, Any]]:
        return self._array("GET", "/workflows", params={"limit": limit})

    def cancel_workflow(self, workflow_id: str) -> dict[str, Any]:
        return self._object("DELETE", f"/workflows/{workflow_id}")

    def dependencies(self, job_id: str) -> dict[str, Any]:
        """The job's dependencies (with their ``result``) and the jobs waiting for it."""
        return self._object("GET", f"/jobs/{job_id}/dependencies")

    # ---- plumbing --------------------------------------------------------------------

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self._json(method, path, **kwargs)
        if not isinstance(answer, dict):
            raise CorralConnectionError(f"expected a JSON object from {path}")
        return answer

    def _array(self, method: str, path: str, **kwargs: Any) -> builtins.list[dict[str, Any]]:
        answer = self._json(method, path, **kwargs)
        if not isinstance(answer, builtins.list):
            raise CorralConnectionError(f"expected a JSON array from {path}")
        return answer

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc
        return answer(response)
