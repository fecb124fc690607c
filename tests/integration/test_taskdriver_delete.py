"""TaskDriver's ``DELETE /api/tasks/{id}`` over real HTTP, on both stores: a deleted
task takes with it all a retention purge would (its artifacts, output and the
idempotency record of the request that made it), so nothing is left to find."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server_on

API = "/api/v1"


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    with run_server_on(request.param, request, tmp_path) as live:
        yield live


def ok(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()


def submit_task(http: httpx.Client, project_id: str, key: str) -> dict[str, Any]:
    """A task made through the native submit, which takes an ``Idempotency-Key``."""
    body = {"command": "echo hi", "project_id": project_id}
    answer = http.post(f"{API}/jobs", json=body, headers={"Idempotency-Key": key})
    created: dict[str, Any] = ok(answer, 201)
    return created


def test_a_deleted_task_leaves_no_artifact_and_frees_its_idempotency_key(
    server: LiveServer,
) -> None:
    with server.client() as http:
        pid = ok(http.post("/api/projects", json={"name": "cleanup"}), 201)["data"]["id"]
        task_id = submit_task(http, pid, "release-1")["id"]
        claim = {"executor_id": "w1", "project_id": pid}
        assert ok(http.post(f"{API}/jobs/claim", json=claim))["id"] == task_id
        fence: dict[str, Any] = {"executor_id": "w1", "attempt": 1}
        stored = http.post(
            f"{API}/jobs/{task_id}/artifacts", params={"path": "out.txt", **fence}, content=b"42"
        )
        artifact_id = ok(stored, 201)["id"]
        done = {**fence, "exit_code": 0, "stdout": "hello\n"}
        ok(http.put(f"{API}/jobs/{task_id}/complete", json=done))
        assert http.get(f"{API}/files/{artifact_id}").content == b"42"

        assert ok(http.delete(f"/api/tasks/{task_id}"))["data"] == {"id": task_id, "deleted": True}

        assert http.get(f"/api/tasks/{task_id}").status_code == 404
        assert http.get(f"{API}/files/{artifact_id}").status_code == 404
        # The key makes a new task rather than replaying the deleted one's answer.
        again = submit_task(http, pid, "release-1")
        assert again["id"] != task_id
        assert ok(http.get(f"/api/tasks/{again['id']}"))["data"]["status"] == "queued"
