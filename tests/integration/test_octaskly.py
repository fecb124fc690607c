"""Octaskly conformance over real HTTP: every documented endpoint, its fields, its
status codes and its error body, for good and bad input; never a 5xx.

The document is shared/seeds/002_*.txt; the choices where it is silent are in
docs/octaskly.md. The end-to-end runs (inputs checked, outputs collected) use a
real ``corral worker`` subprocess against the in-thread server.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

TASKS = "/api/v1/tasks"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CORRAL = [sys.executable, "-m", "corral.cli.main"]
SUMMARY_KEYS = {
    "id",
    "command",
    "status",
    "worker_id",
    "exit_code",
    "duration_ms",
    "created_at",
    "completed_at",
}
NO_CACHE = {
    "cache-control": "no-cache, no-store, must-revalidate",
    "pragma": "no-cache",
    "expires": "0",
}


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> str:
    """The document's error body, exactly, with the status repeated inside it."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "status", "timestamp"}, body
    assert body["status"] == status
    assert ISO_Z.match(body["timestamp"])
    if message is not None:
        assert body["error"] == message
    error: str = body["error"]
    return error


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post(TASKS, json={"command": "echo hello", **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def claim(http: httpx.Client, executor_id: str) -> dict[str, Any]:
    """Start a task the way an executor does, through the native API."""
    answer = http.post("/api/v1/jobs/claim", json={"executor_id": executor_id})
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def finish(http: httpx.Client, job: dict[str, Any], exit_code: int = 0) -> None:
    report = {"executor_id": job["executor_id"], "attempt": job["attempt"], "exit_code": exit_code}
    if exit_code == 0:
        answer = http.put(f"/api/v1/jobs/{job['id']}/complete", json={**report, "stdout": "hi\n"})
    else:
        answer = http.put(f"/api/v1/jobs/{job['id']}/fail", json=report)
    assert answer.status_code == 200, answer.text


# --- POST /api/v1/tasks ---------------------------------------------------------------


def test_create_answers_201_with_the_documented_fields(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.post(TASKS, json={"command": "echo hello", "timeout": 3600})
        assert answer.status_code == 201
        assert answer.headers["content-type"] == "application/json"
        task = answer.json()
        assert set(task) == {"id", "command", "status", "created_at"}
        assert task["command"] == "echo hello"
        assert task["status"] == "queued"
        assert ISO_Z.match(task["created_at"])


@pytest.mark.parametrize("timeout", [1, 60, 86400])
def test_timeouts_within_bounds_are_kept(live_server: LiveServer, timeout: int) -> None:
    with live_server.client() as http:
        task = create(http, timeout=timeout, inputs=["a.txt"], outputs=["out/b.txt"])
        details = http.get(f"{TASKS}/{task['id']}").json()
    assert details["timeout"] == timeout
    assert (details["inputs"], details["outputs"]) == (["a.txt"], ["out/b.txt"])


def test_timeout_defaults_to_an_hour_and_unknown_fields_are_ignored(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        task = create(http, priority="urgent", tags=["x"])
        assert http.get(f"{TASKS}/{task['id']}").json()["timeout"] == 3600


@pytest.mark.parametrize(
    ("body", "title"),
    [
        ({}, "Missing required field: command"),
        ({"timeout": 60}, "Missing required field: command"),
        ({"command": ""}, "Invalid command format"),
        ({"command": "   "}, "Invalid command format"),
        ({"command": 42}, "Invalid command format"),
        ({"command": None}, "Invalid command format"),
        ({"command": "echo \x00"}, "Invalid command format"),
        ({"command": "echo \ud800"}, "Invalid command format"),
        ({"command": "x" * 70000}, "Invalid command format"),
        ({"command": "true", "timeout": 0}, "Invalid parameter value"),
        ({"command": "true", "timeout": 86401}, "Invalid parameter value"),
        ({"command": "true", "timeout": -5}, "Invalid parameter value"),
        ({"command": "true", "timeout": "60"}, "Invalid parameter value"),
        ({"command": "true", "timeout": 60.5}, "Invalid parameter value"),
        ({"command": "true", "timeout": True}, "Invalid parameter value"),
        ({"command": "true", "timeout": None}, "Invalid parameter value"),
        ({"command": "true", "timeout": 2**70}, "Invalid parameter value"),
        ({"command": "true", "inputs": "a.txt"}, "Invalid parameter value"),
        ({"command": "true", "inputs": [1]}, "Invalid parameter value"),
        ({"command": "true", "inputs": ["../etc/passwd"]}, "Invalid parameter value"),
        ({"command": "true", "inputs": ["/etc/passwd"]}, "Invalid parameter value"),
        ({"command": "true", "outputs": [""]}, "Invalid parameter value"),
        ({"command": "true", "outputs": ["a\\b"]}, "Invalid parameter value"),
        ({"command": "true", "outputs": ["\ud800"]}, "Invalid parameter value"),
        ({"command": "true", "input_file_id": "no-such-file"}, "Invalid parameter value"),
        (["echo hello"], "Invalid parameter value"),
        ("echo hello", "Invalid parameter value"),
    ],
)
def test_bad_bodies_are_400_with_the_documents_titles(
    live_server: LiveServer, body: object, title: str
) -> None:
    raw = json.dumps(body).encode()  # ASCII escapes, so lone surrogates reach the server
    with live_server.client() as http:
        answer = http.post(TASKS, content=raw, headers={"Content-Type": "application/json"})
        error = assert_error(answer, 400)
        assert error.startswith(title), error
        assert http.get(TASKS).json()["total"] == 0  # nothing was stored


@pytest.mark.parametrize("raw", [b"{", b"", b"{'command': 'x'}", b"\xff\xfe"])
def test_malformed_json_is_400(live_server: LiveServer, raw: bytes) -> None:
    with live_server.client() as http:
        answer = http.post(TASKS, content=raw, headers={"Content-Type": "application/json"})
    error = assert_error(answer, 400)
    assert error.startswith(("Malformed JSON", "Missing required field")), error


# --- GET /api/v1/tasks/{id} -------------------------------------------------------------


def test_details_of_a_finished_task(live_server: LiveServer) -> None:
    with live_server.client() as http:
        task = create(http, command="cargo build --release")
        job = claim(http, "laptop-01")
        time.sleep(0.02)  # a measurable run
        finish(http, job)
        details = http.get(f"{TASKS}/{task['id']}").json()
    assert SUMMARY_KEYS | {"stdout", "stderr"} <= set(details)
    assert details["id"] == task["id"]
    assert details["command"] == "cargo build --release"
    assert details["status"] == "completed"
    assert details["worker_id"] == "laptop-01"
    assert details["stdout"] == "hi\n"
    assert details["stderr"] == ""
    assert details["exit_code"] == 0
    assert isinstance(details["duration_ms"], int) and details["duration_ms"] >= 20
    assert ISO_Z.match(details["created_at"]) and ISO_Z.match(details["completed_at"])


def test_a_queued_task_has_no_worker_duration_or_completion(live_server: LiveServer) -> None:
    with live_server.client() as http:
        task = create(http)
        details = http.get(f"{TASKS}/{task['id']}").json()
    assert details["status"] == "queued"
    assert details["worker_id"] is None
    assert details["duration_ms"] is None
    assert details["completed_at"] is None
    assert details["exit_code"] is None


@pytest.mark.parametrize("task_id", ["task-001-a1b2c3d4", "00000000-0000-0000-0000-000000000000"])
def test_unknown_task_is_404(live_server: LiveServer, task_id: str) -> None:
    with live_server.client() as http:
        assert_error(http.get(f"{TASKS}/{task_id}"), 404, "Task not found")


# --- GET /api/v1/tasks ------------------------------------------------------------------


def test_list_shape_filters_and_pagination(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ids = [create(http, command=f"echo {n}")["id"] for n in range(5)]
        ran = claim(http, "worker-01")  # the oldest task
        finish(http, ran)
        claim(http, "worker-02")

        everything = http.get(TASKS).json()
        assert set(everything) == {"tasks", "total", "returned", "limit", "offset"}
        assert (everything["total"], everything["returned"]) == (5, 5)
        assert (everything["limit"], everything["offset"]) == (100, 0)
        assert [t["id"] for t in everything["tasks"]] == ids[::-1]  # newest first
        assert all(set(t) == SUMMARY_KEYS for t in everything["tasks"])

        done = http.get(TASKS, params={"status": "completed"}).json()
        assert [t["id"] for t in done["tasks"]] == [ran["id"]]
        assert done["tasks"][0]["worker_id"] == "worker-01"
        assert done["tasks"][0]["exit_code"] == 0
        assert http.get(TASKS, params={"status": "queued"}).json()["total"] == 3
        assert http.get(TASKS, params={"status": "running"}).json()["total"] == 1
        by_worker = http.get(TASKS, params={"worker_id": "worker-02"}).json()
        assert [t["status"] for t in by_worker["tasks"]] == ["running"]
        assert http.get(TASKS, params={"worker_id": "nobody"}).json()["total"] == 0

        page = http.get(TASKS, params={"limit": 2, "offset": 2}).json()
        assert [t["id"] for t in page["tasks"]] == ids[::-1][2:4]
        assert (page["total"], page["returned"], page["limit"], page["offset"]) == (5, 2, 2, 2)
        past = http.get(TASKS, params={"limit": 50, "offset": 200}).json()
        assert (past["tasks"], past["total"], past["returned"]) == ([], 5, 0)
        capped = http.get(TASKS, params={"limit": 5000}).json()
        assert capped["limit"] == 1000


@pytest.mark.parametrize(
    "params",
    [
        {"status": "done"},
        {"status": ""},
        {"limit": 0},
        {"limit": -1},
        {"limit": "many"},
        {"offset": -1},
        {"offset": "x"},
        {"offset": 2**70},
    ],
)
def test_bad_list_queries_are_400(live_server: LiveServer, params: dict[str, Any]) -> None:
    with live_server.client() as http:
        error = assert_error(http.get(TASKS, params=params), 400)
    assert error.startswith("Invalid parameter value"), error


# --- DELETE /api/v1/tasks/{id} ----------------------------------------------------------


def test_a_queued_task_is_cancelled(live_server: LiveServer) -> None:
    with live_server.client() as http:
        task = create(http)
        answer = http.delete(f"{TASKS}/{task['id']}")
        assert answer.status_code == 200
        assert answer.json() == {
            "id": task["id"],
            "status": "cancelled",
            "message": "Task cancelled successfully",
        }
        assert http.get(f"{TASKS}/{task['id']}").json()["status"] == "cancelled"
        # Cancelled is finished: a second cancel finds no task to cancel.
        assert_error(http.delete(f"{TASKS}/{task['id']}"), 404, "Task not found")


def test_a_running_task_is_409_and_keeps_running(live_server: LiveServer) -> None:
    with live_server.client() as http:
        task = create(http)
        claim(http, "worker-01")
        answer = http.delete(f"{TASKS}/{task['id']}")
        assert_error(answer, 409, "Cannot cancel running task")
        native = http.get(f"/api/v1/jobs/{task['id']}").json()
        assert native["status"] == "running"
        assert native["cancel_requested"] is False
        # The native API can still stop it.
        stopped = http.delete(f"/api/v1/jobs/{task['id']}")
        assert stopped.json()["cancel_requested"] is True


@pytest.mark.parametrize("exit_code", [0, 3])
def test_a_finished_task_is_404(live_server: LiveServer, exit_code: int) -> None:
    with live_server.client() as http:
        task = create(http)
        finish(http, claim(http, "worker-01"), exit_code)
        status = http.get(f"{TASKS}/{task['id']}").json()["status"]
        assert status == ("completed" if exit_code == 0 else "failed")
        assert_error(http.delete(f"{TASKS}/{task['id']}"), 404, "Task not found")


def test_cancelling_an_unknown_task_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(http.delete(f"{TASKS}/task-001"), 404, "Task not found")


# --- GET /api/v1/stats ------------------------------------------------------------------


def test_stats_count_workers_tasks_system_and_database(live_server: LiveServer) -> None:
    with live_server.client() as http:
        for executor_id in ("busy-1", "idle-1"):
            registered = http.post("/api/v1/executors", json={"executor_id": executor_id})
            assert registered.status_code == 201
        for _ in range(4):
            create(http)
        finish(http, claim(http, "busy-1"))
        finish(http, claim(http, "busy-1"), exit_code=1)
        claim(http, "busy-1")
        http.delete(f"{TASKS}/{create(http)['id']}")
        stats = http.get("/api/v1/stats").json()
    assert set(stats) == {"workers", "tasks", "system", "database"}
    assert stats["workers"] == {"total": 2, "active": 1, "idle": 1}
    assert stats["tasks"] == {
        "queued": 1,
        "running": 1,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
    }
    system = stats["system"]
    assert set(system) == {"uptime_seconds", "memory_usage_mb", "cpu_usage_percent"}
    assert isinstance(system["uptime_seconds"], int) and system["uptime_seconds"] >= 0
    assert isinstance(system["memory_usage_mb"], int) and system["memory_usage_mb"] > 0
    assert isinstance(system["cpu_usage_percent"], float | int)
    assert system["cpu_usage_percent"] >= 0
    assert stats["database"]["total_tasks"] == 5
    assert isinstance(stats["database"]["disk_size_mb"], int)
    assert stats["database"]["disk_size_mb"] >= 1


# --- authentication, authorization and limits -------------------------------------------

ENDPOINTS = [
    ("POST", TASKS, {"command": "echo hi"}),
    ("GET", TASKS, None),
    ("GET", f"{TASKS}/task-001", None),
    ("DELETE", f"{TASKS}/task-001", None),
    ("GET", "/api/v1/stats", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    "header", [None, "Bearer nope", "Bearer crl_forged", "Basic abc", "Bearer"]
)
def test_every_endpoint_needs_a_valid_token(
    live_server: LiveServer, method: str, path: str, body: object, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    answer = httpx.request(method, live_server.url + path, json=body, headers=headers)
    assert_error(answer, 401, "Missing or invalid authentication token")
    assert answer.headers["www-authenticate"] == "Bearer"


def test_roles_are_enforced_by_the_core_policy(live_server: LiveServer) -> None:
    viewer, worker = live_server.token("viewer"), live_server.token("worker")
    submitter, other = live_server.token("submitter"), live_server.token("submitter")
    with live_server.client(viewer) as http:
        assert_error(http.post(TASKS, json={"command": "true"}), 403, "Insufficient permissions")
        assert http.get(TASKS).status_code == 200
        assert http.get("/api/v1/stats").status_code == 200
    with live_server.client(worker) as http:
        assert_error(http.get(TASKS), 403, "Insufficient permissions")
        assert_error(http.get("/api/v1/stats"), 403, "Insufficient permissions")
    with live_server.client(submitter) as http:
        mine = create(http)
    with live_server.client(other) as http:
        assert_error(http.delete(f"{TASKS}/{mine['id']}"), 403, "Insufficient permissions")
        assert http.get(f"{TASKS}/{mine['id']}").json()["status"] == "queued"
    with live_server.client(submitter) as http:
        assert http.delete(f"{TASKS}/{mine['id']}").status_code == 200


def test_a_spent_rate_limit_is_429_in_this_shape(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", rate_limit="2/minute") as live, live.client() as http:
        assert http.get(TASKS).status_code == 200
        assert http.get(TASKS).status_code == 200
        answer = http.get(TASKS)
        assert_error(answer, 429, "Rate limit exceeded")
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.headers["x-ratelimit-remaining"] == "0"


def test_an_oversized_body_is_413_in_this_shape(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", max_json_bytes=1024) as live, live.client() as http:
        error = assert_error(http.post(TASKS, json={"command": "x" * 4000}), 413)
        assert error.startswith("Request body too large")
        assert http.get(TASKS).json()["total"] == 0


def test_the_documents_headers_on_every_answer(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answers = [
            http.post(TASKS, json={"command": "true"}),
            http.post(TASKS, json={}),
            http.get(TASKS),
            http.get(f"{TASKS}/nope"),
            http.get("/api/v1/stats"),
            httpx.get(live_server.url + TASKS),
        ]
    for answer in answers:
        assert answer.status_code < 500
        assert answer.headers["content-type"] == "application/json"
        assert len(answer.headers["x-request-id"]) >= 16
        assert float(answer.headers["x-response-time-ms"]) >= 0
        for name, value in NO_CACHE.items():
            assert answer.headers[name] == value


# --- inputs and outputs on a real worker ------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server and one real ``corral worker`` for the runs below."""
    root = tmp_path_factory.mktemp("octaskly")
    with run_server(root / "data") as live:
        worker_token = live.token("worker")
        with (root / "worker.log").open("ab") as log:
            worker = subprocess.Popen(
                [
                    *CORRAL,
                    "worker",
                    "--server",
                    live.url,
                    "--token",
                    worker_token,
                    "--name",
                    "octaskly-worker",
                    "--work-dir",
                    str(root / "work"),
                    "--claim-wait",
                    "1",
                ],
                stdout=log,
                stderr=log,
            )
        try:
            yield live
        finally:
            worker.terminate()
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def wait_finished(http: httpx.Client, task_id: str, seconds: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        task: dict[str, Any] = http.get(f"{TASKS}/{task_id}").json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        assert time.monotonic() < deadline, f"task still {task['status']}"
        time.sleep(0.1)


def upload_zip(http: httpx.Client, entries: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    files = {"file": ("inputs.zip", buffer.getvalue(), "application/zip")}
    answer = http.post("/api/v1/files", files=files)
    assert answer.status_code == 201, answer.text
    file_id: str = answer.json()["id"]
    return file_id


def test_a_task_runs_on_a_worker_with_its_output_and_duration(cluster: LiveServer) -> None:
    with cluster.client() as http:
        task = create(http, command="echo hello; echo oops >&2; sleep 0.1")
        done = wait_finished(http, task["id"])
    assert done["status"] == "completed", done
    assert (done["stdout"], done["stderr"], done["exit_code"]) == ("hello\n", "oops\n", 0)
    assert done["worker_id"]
    assert done["duration_ms"] >= 100


def test_a_missing_input_fails_the_task_before_it_runs(cluster: LiveServer) -> None:
    with cluster.client() as http:
        task = create(http, command="echo ran", inputs=["data.csv"])
        done = wait_finished(http, task["id"])
    assert done["status"] == "failed"
    assert done["error"] == "missing input: data.csv"
    assert done["stdout"] == ""


def test_inputs_from_an_archive_and_outputs_collected_as_artifacts(cluster: LiveServer) -> None:
    with cluster.client() as http:
        file_id = upload_zip(http, {"data.csv": b"a,b\n1,2\n"})
        task = create(
            http,
            command="wc -l < data.csv > count.txt",
            inputs=["data.csv"],
            outputs=["count.txt", "never.txt"],
            input_file_id=file_id,
        )
        done = wait_finished(http, task["id"])
        assert done["status"] == "completed", done
        artifacts = http.get(done["artifacts_url"]).json()
        assert [a["path"] for a in artifacts] == ["count.txt"]
        content = http.get(f"{done['artifacts_url']}/{artifacts[0]['id']}")
        assert content.content.strip() == b"2"
        native = http.get(f"/api/v1/jobs/{task['id']}").json()
    assert native["result"] == {"output_notes": ["missing output: never.txt"]}
