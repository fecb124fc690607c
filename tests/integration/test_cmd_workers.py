"""CMD Executor's /api/workers over real HTTP: registration with its own token,
409 on a live duplicate, heartbeats, listing and filtering, unregistering."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

WORKER = {
    "workerId": "worker-001",
    "hostname": "desktop-pc",
    "cpuCount": 8,
    "totalMemoryMb": 16384,
    "metadata": {"osType": "Windows", "nodeVersion": "18.17.0", "tags": ["test", "build"]},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data", executor_offline_after=2.0) as live:
        yield live


def register(live: LiveServer, body: dict[str, Any] | None = None) -> httpx.Response:
    join = live.token("worker")
    with live.client(join) as http:
        return http.post("/api/workers/register", json=body or WORKER)


def as_worker(live: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers={"x-worker-token": token}, timeout=30)


def error_shape(answer: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()
    assert set(body) >= {"error", "message", "details", "code"}, body
    return body


def test_register_answers_201_with_a_token_bound_to_the_worker(server: LiveServer) -> None:
    answer = register(server)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["success"] is True and body["workerId"] == "worker-001"
    assert body["registeredAt"].endswith("Z")
    token = body["token"]
    with as_worker(server, token) as http:
        beat = http.post("/api/workers/heartbeat", json={"workerId": "worker-001"})
        assert beat.status_code == 200, beat.text
        assert beat.json()["success"] is True
        assert beat.json()["nextCheckIn"] > 0
        other = http.post("/api/workers/heartbeat", json={"workerId": "worker-002"})
        assert other.status_code == 403
        assert error_shape(other)["code"] == "FORBIDDEN"


def test_registration_needs_an_admin_or_a_join_token(server: LiveServer) -> None:
    anonymous = httpx.post(f"{server.url}/api/workers/register", json=WORKER)
    assert anonymous.status_code == 401
    error_shape(anonymous)
    with server.client(server.token("submitter")) as http:
        assert http.post("/api/workers/register", json=WORKER).status_code == 403
    with server.client() as http:  # admin
        assert http.post("/api/workers/register", json=WORKER).status_code == 201
        assert http.get("/api/workers/list").json()["total"] == 1


def test_live_duplicate_is_409_and_a_silent_worker_may_be_taken_over(
    server: LiveServer,
) -> None:
    first = register(server).json()["token"]
    again = register(server)
    assert again.status_code == 409
    assert error_shape(again)["message"] == "Worker already registered"
    time.sleep(2.2)  # past executor_offline_after: the first worker is now offline
    second = register(server)
    assert second.status_code == 201
    with as_worker(server, first) as http:  # the silent worker's token was revoked
        assert (
            http.post("/api/workers/heartbeat", json={"workerId": "worker-001"}).status_code == 401
        )


def test_bad_registration_is_400_in_the_dialect_shape(server: LiveServer) -> None:
    for body in ({"hostname": "x"}, {**WORKER, "workerId": ""}, {**WORKER, "cpuCount": -1}):
        answer = register(server, body)
        assert answer.status_code == 400, (body, answer.text)
        assert error_shape(answer)["code"] == "VALIDATION_ERROR"
    missing = register(server, {"hostname": "x"})
    assert "workerId" in missing.json()["message"]
    with server.client() as http:
        assert http.get("/api/workers/list").json()["total"] == 0


def test_list_get_filter_and_unregister(server: LiveServer) -> None:
    register(server)
    register(server, {**WORKER, "workerId": "worker-002", "metadata": {"tags": ["gpu"]}})
    with server.client(server.token("viewer")) as http:
        listed = http.get("/api/workers/list", params={"status": "online", "limit": 50}).json()
        assert listed["success"] is True and listed["total"] == 2
        assert listed["limit"] == 50 and listed["offset"] == 0 and listed["hasMore"] is False
        first = next(w for w in listed["workers"] if w["workerId"] == "worker-001")
        assert first["hostname"] == "desktop-pc" and first["cpuCount"] == 8
        assert first["status"] == "online" and first["currentJobId"] is None
        assert first["jobsCompleted"] == 0 and first["lastHeartbeat"].endswith("Z")
        tagged = http.get("/api/workers/list", params={"tags": "test"}).json()
        assert [w["workerId"] for w in tagged["workers"]] == ["worker-001"]
        paged = http.get("/api/workers/list", params={"limit": 1}).json()
        assert len(paged["workers"]) == 1 and paged["hasMore"] is True
        assert http.get("/api/workers/list", params={"status": "busy"}).status_code == 400
        detail = http.get("/api/workers/worker-001").json()["worker"]
        assert detail["totalMemoryMb"] == 16384
        assert detail["metadata"]["osType"] == "Windows"
        assert detail["metadata"]["tags"] == ["test", "build"]
        missing = http.get("/api/workers/nope")
        assert missing.status_code == 404
        assert error_shape(missing)["message"] == "Worker not found"
        assert http.delete("/api/workers/worker-001").status_code == 403  # viewer
    with server.client() as http:
        gone = http.delete("/api/workers/worker-001")
        assert gone.json() == {"success": True, "message": "Worker unregistered"}
        assert http.get("/api/workers/worker-001").status_code == 404
        assert http.delete("/api/workers/worker-001").status_code == 404


def test_status_follows_heartbeats_and_reported_errors(server: LiveServer) -> None:
    token = register(server).json()["token"]
    with as_worker(server, token) as worker, server.client() as admin:
        beat = {"workerId": "worker-001", "status": "error"}
        assert worker.post("/api/workers/heartbeat", json=beat).status_code == 200
        assert admin.get("/api/workers/worker-001").json()["worker"]["status"] == "error"
        beat["status"] = "idle"
        worker.post("/api/workers/heartbeat", json=beat)
        assert admin.get("/api/workers/worker-001").json()["worker"]["status"] == "online"
        time.sleep(2.2)
        assert admin.get("/api/workers/worker-001").json()["worker"]["status"] == "offline"
        listed = admin.get("/api/workers/list", params={"status": "offline"}).json()
        assert listed["total"] == 1


def test_a_worker_may_unregister_itself_and_its_token_then_stops(server: LiveServer) -> None:
    token = register(server).json()["token"]
    with as_worker(server, token) as worker:
        assert worker.delete("/api/workers/worker-001").status_code == 200
        assert worker.get("/api/jobs/get-job").status_code == 401


def test_worker_token_is_refused_on_user_endpoints(server: LiveServer) -> None:
    token = register(server).json()["token"]
    with as_worker(server, token) as worker:
        assert worker.get("/api/workers/list").status_code == 403
        assert worker.post("/api/jobs/submit", json={"command": "id"}).status_code == 403
        assert worker.get("/api/jobs/list").status_code == 403
        assert worker.get("/api/v1/jobs").status_code == 403
    with server.client() as admin:
        assert admin.get("/api/jobs/list").json()["total"] == 0
    bearer = httpx.get(
        f"{server.url}/api/jobs/get-job", headers={"x-worker-token": server.token("viewer")}
    )
    assert bearer.status_code == 401  # x-worker-token carries worker tokens only


def test_item8_only_the_workers_own_token_may_heartbeat_it(server: LiveServer) -> None:
    register(server)
    join = server.token("worker")
    with as_worker(server, join) as other:
        beat = other.post("/api/workers/heartbeat", json={"workerId": "worker-001"})
    assert beat.status_code == 403, beat.text
    assert error_shape(beat)["code"] == "FORBIDDEN"
    with server.client() as admin:  # an admin still may
        assert admin.post("/api/workers/heartbeat", json={"workerId": "worker-001"}).is_success


def test_item8_a_heartbeat_renews_only_leases_its_registration_holds(server: LiveServer) -> None:
    token = register(server).json()["token"]
    with server.client() as admin:
        job_id = admin.post("/api/jobs/submit", json={"command": "id"}).json()["jobId"]
    # Another token leases a job under the same worker id (a native claim names its id).
    with server.client(server.token("worker")) as stranger:
        claimed = stranger.post("/api/v1/jobs/claim", json={"executor_id": "worker-001"})
    assert claimed.status_code == 200 and claimed.json()["id"] == job_id
    expiry = claimed.json()["lease_expires_at"]
    with as_worker(server, token) as worker:
        beat = worker.post("/api/workers/heartbeat", json={"workerId": "worker-001"})
    assert beat.status_code == 200 and beat.json()["runningJobIds"] == []
    with server.client() as admin:
        assert admin.get(f"/api/v1/jobs/{job_id}").json()["lease_expires_at"] == expiry


def test_item8_taking_over_an_id_hands_the_old_registrations_jobs_back(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", executor_offline_after=0.3) as live:
        first = register(live).json()["token"]
        with live.client() as admin:
            job_id = admin.post("/api/jobs/submit", json={"command": "id"}).json()["jobId"]
        with as_worker(live, first) as crashed:
            assert crashed.get("/api/jobs/get-job").json()["job"]["jobId"] == job_id
        time.sleep(0.5)  # the first registration goes silent past executor_offline_after
        second = register(live)
        assert second.status_code == 201, second.text
        with live.client() as admin:
            job = admin.get(f"/api/v1/jobs/{job_id}").json()
        assert job["status"] == "pending"  # back in the queue at once, not at lease expiry
        assert [a["status"] for a in job["attempts"]] == ["lost"]
        with as_worker(live, second.json()["token"]) as fresh:
            beat = fresh.post("/api/workers/heartbeat", json={"workerId": "worker-001"})
        assert beat.json()["runningJobIds"] == []
