"""How each SDK call is spelled over HTTP, shared by the sync and the async client.

Pure functions from arguments to a request (method, path, params, body, headers)
and one for ``wait``'s polling pace, so the two clients differ only in how they
send, never in what.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from corral.client.errors import CorralConnectionError, error_for

API = "/api/v1"
WAIT_FIRST = 0.1  # seconds before the first re-read in ``wait``
WAIT_MOST = 1.0  # ... growing by half each time up to this


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request`` / ``AsyncClient.request``."""
        found = {"params": self.params, "json": self.json, "headers": self.headers or None}
        return {k: v for k, v in found.items() if v is not None}


def submit(command: str | None, idempotency_key: str | None, fields: dict[str, Any]) -> Request:
    body = {k: v for k, v in {"command": command, **fields}.items() if v is not None}
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Request("POST", f"{API}/jobs", json=body, headers=headers)


def get_job(job_id: str) -> Request:
    return Request("GET", f"{API}/jobs/{job_id}")


def list_jobs(status: str | None, limit: int, offset: int, filters: dict[str, Any]) -> Request:
    params = {"status": status, "limit": limit, "offset": offset, **filters}
    return Request("GET", f"{API}/jobs", params={k: v for k, v in params.items() if v is not None})


def cancel(job_id: str) -> Request:
    return Request("DELETE", f"{API}/jobs/{job_id}")


def executors() -> Request:
    return Request("GET", f"{API}/executors")


def output(job_id: str, stream: str, offset: int, limit: int) -> Request:
    params = {"stream": stream, "offset": offset, "limit": limit}
    return Request("GET", f"{API}/jobs/{job_id}/output", params=params)


def artifacts(job_id: str) -> Request:
    return Request("GET", f"{API}/jobs/{job_id}/artifacts")


def upload(filename: str) -> Request:
    headers = {"Content-Type": "application/octet-stream"}
    return Request("POST", f"{API}/files", params={"filename": filename}, headers=headers)


def follow_path(job_id: str) -> str:
    return f"{API}/jobs/{job_id}/output/follow"


def artifact_path(job_id: str, artifact_id: str) -> str:
    return f"{API}/jobs/{job_id}/artifacts/{artifact_id}"


def file_path(file_id: str) -> str:
    return f"{API}/files/{file_id}"


def next_pause(previous: float | None, left: float | None) -> float:
    """How long ``wait`` sleeps before reading the job again: quick at first (most
    jobs are short), then at most ``WAIT_MOST``, never past the deadline."""
    pause = WAIT_FIRST if previous is None else min(previous * 1.5, WAIT_MOST)
    return pause if left is None else max(0.0, min(pause, left))


def answer(response: httpx.Response) -> Any:
    """The JSON of a successful answer (None for 204 or an empty body); raises the
    typed error of a failed one."""
    if response.status_code >= 400:
        raise error_for(response)
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise CorralConnectionError(
            "the server answered with invalid JSON", response.status_code
        ) from exc
