"""CMD Executor's /api/jobs over real HTTP: submit, status, list, and the worker side
(get-job, stream-output, submit-result) fenced by the lease the worker holds."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data", reaper_interval=0.2, lease_grace=0.0) as live:
        yield live


def worker(live: LiveServer, worker_id: str = "worker-001", **extra: Any) -> httpx.Client:
    """A worker registered the way the document's Worker Execution Flow does it."""
    with live.client(live.token("worker")) as http:
        answer = http.post("/api/workers/register", json={"workerId": worker_id, **extra})
        assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    return httpx.Client(base_url=live.url, headers={"x-worker-token": token}, timeout=30)


def submit(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/api/jobs/submit", json={"command": "npm test", **body})
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_submit_answers_201_queued_with_an_estimate(server: LiveServer) -> None:
    with server.client(server.token("submitter")) as http:
        body = submit(http, timeout=600, priority="high")
        assert body["success"] is True and body["status"] == "queued"
        assert body["createdAt"].endswith("Z")
        assert isinstance(body["estimatedWaitTime"], int) and body["estimatedWaitTime"] >= 0
        status = http.get("/api/jobs/status", params={"jobId": body["jobId"]}).json()
        job = status["job"]
        assert status["success"] is True
        assert job["status"] == "queued" and job["progress"] == 0 and job["exitCode"] is None
        assert job["timeout"] == 600 and job["priority"] == "high" and job["stdout"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "command"),
        ({"command": ""}, "command"),
        ({"command": "x", "timeout": 0}, "timeout"),
        ({"command": "x", "timeout": 86401}, "timeout"),
        ({"command": "x", "priority": "urgent"}, "priority"),
        ({"command": "x", "fileUrl": "https://elsewhere.example/x.zip?y"}, "fileUrl"),
        ({"command": "x", "fileUrl": "/uploads/no-such-file/project.zip"}, "fileUrl"),
        ({"command": "x", "workingDirectory": "../etc"}, "workingDirectory"),
        ({"command": "x", "workingDirectory": "/etc"}, "workingDirectory"),
        ({"command": "x", "env": {"LD_PRELOAD": "/tmp/x.so"}}, "env"),
        ({"command": "x", "env": {"1BAD": "v"}}, "env"),
    ],
)
def test_bad_submissions_are_400_and_store_nothing(
    server: LiveServer, body: dict[str, Any], field: str
) -> None:
    with server.client(server.token("submitter")) as http:
        answer = http.post("/api/jobs/submit", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()
        assert error["error"] == "Invalid request" and error["code"] == "VALIDATION_ERROR"
        assert error["details"].get("field") == field, error
        assert http.get("/api/jobs/list").json()["total"] == 0


def test_missing_command_reads_as_the_document_says(server: LiveServer) -> None:
    with server.client() as http:
        answer = http.post("/api/jobs/submit", json={"timeout": 5})
        assert answer.status_code == 400
        assert answer.json()["message"] == "command is required"


def test_get_job_is_204_when_idle_and_hands_out_one_job(server: LiveServer) -> None:
    with worker(server) as w, server.client(server.token("submitter")) as http:
        assert w.get("/api/jobs/get-job").status_code == 204
        job_id = submit(http, timeout=600, workingDirectory="project")["jobId"]
        got = w.get("/api/jobs/get-job")
        assert got.status_code == 200
        job = got.json()["job"]
        assert job["jobId"] == job_id and job["command"] == "npm test"
        assert job["timeout"] == 600 and job["workingDirectory"] == "project"
        assert job["fileUrl"] is None
        assert w.get("/api/jobs/get-job").status_code == 204  # leased, not handed out twice
        status = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert status["status"] == "running" and status["workerId"] == "worker-001"
        assert status["startedAt"].endswith("Z") and status["progress"] is None
        listed = http.get("/api/workers/worker-001").json()["worker"]
        assert listed["currentJobId"] == job_id


def test_long_poll_get_job_wakes_on_submit(server: LiveServer) -> None:
    def later() -> None:
        time.sleep(0.3)
        with server.client() as http:
            submit(http)

    with worker(server) as w:
        submitter = threading.Thread(target=later)
        submitter.start()
        started = time.monotonic()
        got = w.get("/api/jobs/get-job", params={"wait": 5})
        submitter.join()
        assert got.status_code == 200, got.text
        assert 0.25 < time.monotonic() - started < 4


def test_stream_output_then_result_says_each_line_once(server: LiveServer) -> None:
    with worker(server) as w, server.client(server.token("submitter")) as http:
        job_id = submit(http)["jobId"]
        assert w.get("/api/jobs/get-job").status_code == 200
        line = {"jobId": job_id, "data": "test line 1\n", "type": "stdout"}
        streamed = w.post("/api/jobs/stream-output", json=line)
        assert streamed.json() == {"success": True, "received": True}
        w.post("/api/jobs/stream-output", json={**line, "data": "warn\n", "type": "stderr"})
        live = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert live["stdout"] == "test line 1\n" and live["stderr"] == "warn\n"
        result = {
            "jobId": job_id,
            "workerId": "worker-001",
            "stdout": "test line 1\ntests passed\n",
            "stderr": "",
            "exitCode": 0,
        }
        saved = w.post("/api/jobs/submit-result", json=result)
        assert saved.json() == {"success": True, "message": "Result saved", "jobId": job_id}
        done = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert done["status"] == "completed" and done["exitCode"] == 0
        assert done["progress"] == 100 and done["completedAt"].endswith("Z")
        assert done["stdout"] == "test line 1\ntests passed\n"
        assert done["stderr"] == "warn\n"
        again = w.post("/api/jobs/submit-result", json=result)
        assert again.status_code == 409
        assert again.json()["code"] == "CONFLICT"


def test_nonzero_exit_fails_the_job(server: LiveServer) -> None:
    with worker(server) as w, server.client() as http:
        job_id = submit(http)["jobId"]
        w.get("/api/jobs/get-job")
        result = {"jobId": job_id, "workerId": "worker-001", "stderr": "boom", "exitCode": 2}
        assert w.post("/api/jobs/submit-result", json=result).status_code == 200
        done = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert done["status"] == "failed" and done["exitCode"] == 2 and done["stderr"] == "boom"
        assert w.post("/api/jobs/submit-result", json={"jobId": job_id}).status_code == 400


def test_another_worker_cannot_report_or_stream_for_a_job(server: LiveServer) -> None:
    with worker(server) as first, worker(server, "worker-002") as second, server.client() as http:
        job_id = submit(http)["jobId"]
        assert first.get("/api/jobs/get-job").status_code == 200
        result = {"jobId": job_id, "workerId": "worker-002", "exitCode": 0}
        assert second.post("/api/jobs/submit-result", json=result).status_code == 409
        spoofed = {**result, "workerId": "worker-001"}
        assert second.post("/api/jobs/submit-result", json=spoofed).status_code == 403
        line = {"jobId": job_id, "data": "x", "type": "stdout"}
        assert second.post("/api/jobs/stream-output", json=line).status_code == 409
        status = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert status["status"] == "running" and status["stdout"] == ""


def test_a_lost_lease_refuses_the_late_result(server: LiveServer) -> None:
    with worker(server) as w, server.client() as http:
        job_id = http.post(
            "/api/v1/jobs",
            json={"command": "true", "lease_seconds": 1, "max_retries": 3},
        ).json()["id"]
        assert w.get("/api/jobs/get-job").status_code == 200
        deadline = time.monotonic() + 10
        while (
            http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]["status"]
            != "queued"
        ):
            assert time.monotonic() < deadline, "the reaper never requeued the job"
            time.sleep(0.1)
        late = {"jobId": job_id, "workerId": "worker-001", "exitCode": 0}
        assert w.post("/api/jobs/submit-result", json=late).status_code == 409


def test_heartbeats_keep_the_lease_alive(server: LiveServer) -> None:
    with worker(server) as w, server.client() as http:
        job_id = http.post("/api/v1/jobs", json={"command": "true", "lease_seconds": 1}).json()[
            "id"
        ]
        assert w.get("/api/jobs/get-job").status_code == 200
        for _ in range(8):
            beat = w.post("/api/workers/heartbeat", json={"workerId": "worker-001"}).json()
            assert beat["runningJobIds"] == [job_id]
            time.sleep(0.25)
        status = http.get("/api/jobs/status", params={"jobId": job_id}).json()["job"]
        assert status["status"] == "running" and status["attempt"] == 1


def test_cmd_workers_take_shell_commands_only(server: LiveServer) -> None:
    binary = {
        "type": "tool",
        "binary_url": "https://example.com/tool",
        "binary_sha256": "a" * 64,
        "priority": "background",
    }
    with worker(server) as w, server.client() as http:
        assert http.post("/api/v1/jobs", json=binary).status_code == 201
        assert w.get("/api/jobs/get-job").status_code == 204
        shell = submit(http)["jobId"]
        assert w.get("/api/jobs/get-job").json()["job"]["jobId"] == shell


def test_worker_tags_are_its_labels(server: LiveServer) -> None:
    with worker(server, metadata={"tags": ["gpu"]}) as w, server.client() as http:
        cpu_only = worker(server, "worker-002")
        job_id = submit(http, labels=["gpu"])["jobId"]
        assert cpu_only.get("/api/jobs/get-job").status_code == 204
        assert w.get("/api/jobs/get-job").json()["job"]["jobId"] == job_id
        cpu_only.close()


def test_list_filters_sorts_and_pages(server: LiveServer) -> None:
    with worker(server) as w, server.client(server.token("submitter")) as http:
        ids = [submit(http, command=f"echo {n}")["jobId"] for n in range(5)]
        claimed = w.get("/api/jobs/get-job").json()["job"]["jobId"]
        assert claimed == ids[0]
        page = http.get("/api/jobs/list", params={"limit": 2}).json()
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 0
        assert page["hasMore"] is True
        assert [j["jobId"] for j in page["jobs"]] == ids[::-1][:2]  # newest first
        assert page["data"] == page["jobs"]
        oldest = http.get("/api/jobs/list", params={"sort": "createdAt", "limit": 2}).json()
        assert [j["jobId"] for j in oldest["jobs"]] == ids[:2]
        last = http.get("/api/jobs/list", params={"offset": 4}).json()
        assert len(last["jobs"]) == 1 and last["hasMore"] is False
        running = http.get("/api/jobs/list", params={"status": "running"}).json()
        assert running["total"] == 1 and running["jobs"][0]["workerId"] == "worker-001"
        queued = http.get("/api/jobs/list", params={"status": "queued"}).json()
        assert queued["total"] == 4
        mine = http.get("/api/jobs/list", params={"workerId": "worker-001"}).json()
        assert [j["jobId"] for j in mine["jobs"]] == [claimed]
        assert http.get("/api/jobs/list", params={"limit": 5000}).json()["limit"] == 1000
        for bad in ({"status": "done"}, {"sort": "name"}, {"limit": 0}, {"offset": -1}):
            answer = http.get("/api/jobs/list", params=bad)
            assert answer.status_code == 400, bad
            assert set(answer.json()) >= {"error", "message", "details", "code"}


def test_status_needs_a_job_id_and_404s_unknown_ones(server: LiveServer) -> None:
    with server.client() as http:
        missing = http.get("/api/jobs/status")
        assert missing.status_code == 400 and missing.json()["message"] == "jobId is required"
        unknown = http.get("/api/jobs/status", params={"jobId": "job-12345"})
        assert unknown.status_code == 404 and unknown.json()["code"] == "NOT_FOUND"


def test_get_job_needs_a_registered_worker_token(server: LiveServer) -> None:
    with server.client() as admin:
        assert admin.get("/api/jobs/get-job").status_code == 400
    join = httpx.get(
        f"{server.url}/api/jobs/get-job", headers={"x-worker-token": server.token("worker")}
    )
    assert join.status_code == 400
    assert "register" in join.json()["message"]


def test_a_job_with_an_uploaded_archive_carries_a_download_url(server: LiveServer) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("project/run.sh", "echo from-archive\n")
    with worker(server) as w, server.client() as http:
        uploaded = http.post(
            "/api/v1/files", files={"file": ("project.zip", archive.getvalue(), "application/zip")}
        ).json()
        job_id = submit(http, fileUrl=f"/uploads/{uploaded['id']}/project.zip")["jobId"]
        job = w.get("/api/jobs/get-job").json()["job"]
        assert job["jobId"] == job_id
        assert job["fileUrl"].startswith(server.url)
        assert uploaded["id"] in job["fileUrl"]


def test_secret_env_reaches_the_worker_and_no_reader(server: LiveServer) -> None:
    with worker(server) as w, server.client(server.token("submitter")) as http:
        body = {"env": {"MODE": "ci"}, "secretEnv": {"API_KEY": "s3cr3t-value"}}
        job_id = submit(http, **body)["jobId"]
        for path, params in (("/api/jobs/status", {"jobId": job_id}), ("/api/jobs/list", {})):
            assert "s3cr3t-value" not in http.get(path, params=params).text
        assert "s3cr3t-value" not in http.get(f"/api/v1/jobs/{job_id}").text
        job = w.get("/api/jobs/get-job").json()["job"]
        assert job["env"] == {"MODE": "ci", "API_KEY": "s3cr3t-value"}
