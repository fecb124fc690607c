"""Placement over real HTTP (issue 12): resources and network on submit, worker
capacity on registration and heartbeat, the claimed body, pending_reason, and
refusals in each dialect's own error shape."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_native_api import API, assert_error, claim, claim_one, details, submit
from tests.integration.test_native_fleet import beat, register
from tests.live import LiveServer, run_server


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the requests that must be refused and change nothing."""
    with run_server(tmp_path_factory.mktemp("placement") / "data") as server:
        yield server


SHELL = {"command": "true", "type": "shell", "priority": "normal"}


def ask(**extra: Any) -> dict[str, Any]:
    return {**SHELL, "binary_url": None, "binary_sha256": None, **extra}


def test_item_placement_resources_are_stored_shown_and_claimed(live_server: LiveServer) -> None:
    resources = {"cpus": 1.5, "memory_mb": 256, "pids": 64}
    with live_server.client() as http:
        job = submit(http, **ask(resources=resources, network=False))
        shown = details(http, job["id"])
        assert shown["resources"] == resources and shown["network"] is False
        bulk = http.post(f"{API}/jobs/bulk", json=[ask(resources={"memory_mb": 8}), ask()])
        assert bulk.status_code == 201, bulk.text
        first, second = (details(http, j["id"]) for j in bulk.json())
        assert first["resources"] == {"cpus": None, "memory_mb": 8, "pids": None}
        assert (second["resources"], second["network"]) == (None, True)
        body = {"cpus": 4, "memory_mb": 1024, "isolation": "sandbox", "network_control": True}
        assert register(http, "sandboxed", **body).status_code == 201
        claimed = claim_one(http, "sandboxed")
        assert claimed["id"] == job["id"]
        assert claimed["resources"] == resources and claimed["network"] is False


@pytest.mark.parametrize(
    "extra",
    [
        {"resources": {"cpus": 0}},
        {"resources": {"cpus": 5000}},
        {"resources": {"memory_mb": 0}},
        {"resources": {"memory_mb": 1.5}},
        {"resources": {"pids": -1}},
        {"resources": {"cpus": "many"}},
        {"resources": "big"},
        {"network": "maybe"},
    ],
)
def test_item_placement_bad_resources_are_400_in_native_shape(
    refusing: LiveServer, extra: dict[str, Any]
) -> None:
    with refusing.client() as http:
        assert_error(http.post(f"{API}/jobs", json=ask(**extra)), 400)
        assert_error(http.post(f"{API}/jobs/bulk", json=[ask(**extra)]), 400)


def test_item_placement_bad_capacity_is_400(refusing: LiveServer) -> None:
    with refusing.client(refusing.token("worker")) as http:
        assert_error(register(http, "w-bad", isolation="jail"), 400)
        assert_error(register(http, "w-bad", cpus=-1), 400)


def test_item_placement_pending_reason_says_why(live_server: LiveServer) -> None:
    with live_server.client() as http:
        plain = submit(http, **ask())
        assert details(http, plain["id"])["pending_reason"] == "no worker is online"
        body = {"cpus": 2, "memory_mb": 512, "labels": ["x86"], "isolation": "none"}
        assert register(http, "small", **body).status_code == 201
        cases = {
            "no online worker has label arm64": ask(labels=["arm64"]),
            "needs 64 CPUs; the largest online worker has 2": ask(resources={"cpus": 64}),
            "needs 4096 MiB of memory; the largest online worker has 512 MiB": ask(
                resources={"memory_mb": 4096}
            ),
            "needs a worker that can cut its network; no online worker can": ask(network=False),
        }
        ids = {reason: submit(http, **job)["id"] for reason, job in cases.items()}
        fits = submit(http, **ask(labels=["x86"], resources={"cpus": 2}))
        for reason, job_id in ids.items():
            assert details(http, job_id)["pending_reason"] == reason
        assert details(http, fits["id"])["pending_reason"] is None
        listed = {j["id"]: j["pending_reason"] for j in http.get(f"{API}/jobs").json()}
        assert {listed[job_id] for job_id in ids.values()} == set(cases)
        # Not starved: the fitting job submitted after them is the one claimed.
        claimed = [claim_one(http, "small", labels=["x86"], n=10)]
        assert fits["id"] in {j["id"] for batch in claimed for j in batch}
        assert details(http, fits["id"])["pending_reason"] is None


def test_item_placement_executor_list_shows_capacity_and_reserved(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        body = {"cpus": 2, "memory_mb": 1000, "isolation": "user"}
        assert register(http, "w1", **body).status_code == 201
        submit(http, **ask(resources={"cpus": 0.5, "memory_mb": 300}))
        claim_one(http, "w1")
        [shown] = http.get(f"{API}/executors").json()
        assert shown["isolation"] == "user" and shown["network_control"] is False
        assert shown["capacity"] == {"cpus": 2.0, "memory_mb": 1000}
        assert shown["reserved"] == {"cpus": 0.5, "memory_mb": 300}
        answer = beat(http, "w1", cpus=3, network_control=True, isolation="sandbox")
        assert answer.status_code == 200, answer.text
        [shown] = http.get(f"{API}/executors").json()
        assert shown["capacity"] == {"cpus": 3.0, "memory_mb": 1000}
        assert (shown["isolation"], shown["network_control"]) == ("sandbox", True)


def cmd_worker(live: LiveServer, worker_id: str, **extra: Any) -> httpx.Client:
    with live.client(live.token("worker")) as http:
        answer = http.post("/api/workers/register", json={"workerId": worker_id, **extra})
        assert answer.status_code == 201, answer.text
    token = answer.json()["token"]
    return httpx.Client(base_url=live.url, headers={"x-worker-token": token}, timeout=30)


def test_item_placement_cmd_required_cpu_and_ram(live_server: LiveServer) -> None:
    with live_server.client() as http:
        big = http.post("/api/jobs/submit", json={"command": "true", "requiredRamMb": 4096})
        small = http.post(
            "/api/jobs/submit", json={"command": "true", "requiredCpu": 1, "requiredRamMb": 512}
        )
        assert big.status_code == small.status_code == 201, (big.text, small.text)
        shown = details(http, small.json()["jobId"])
        assert shown["resources"] == {"cpus": 1.0, "memory_mb": 512, "pids": None}
        for bad in ({"requiredCpu": 0}, {"requiredRamMb": -5}, {"requiredCpu": "x"}):
            answer = http.post("/api/jobs/submit", json={"command": "true", **bad})
            assert answer.status_code == 400, answer.text
            assert set(answer.json()) >= {"error", "message", "details", "code"}
    with cmd_worker(live_server, "cmd-1", cpuCount=2, totalMemoryMb=1024) as worker:
        got = worker.get("/api/jobs/get-job").json()
        assert got["job"]["jobId"] == small.json()["jobId"]
        assert (got["job"]["requiredCpu"], got["job"]["requiredRamMb"]) == (1.0, 512)
    with live_server.client() as http:
        listed = http.get("/api/workers/list")
    assert listed.status_code == 200, listed.text
    [shown] = [w for w in listed.json()["workers"] if w["workerId"] == "cmd-1"]
    assert shown["reservedMemoryMb"] == 512 and shown["cpus"] == 2.0


def test_item_cgroup_leftover_processes_shown_on_the_attempt(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job = submit(http, **ask())
        claimed = claim_one(http, "w1")
        report = {
            "job_id": job["id"],
            "executor_id": "w1",
            "attempt": claimed["attempt"],
            "status": "completed",
            "exit_code": 0,
            "leftover_processes": 3,
        }
        answer = http.post(f"{API}/jobs/results", json=[report])
        assert answer.status_code == 200, answer.text
        [attempt] = details(http, job["id"])["attempts"]
        assert attempt["leftover_processes"] == 3
        report["leftover_processes"] = -1
        assert_error(http.post(f"{API}/jobs/results", json=[report]), 400)


def test_item_placement_freed_capacity_wakes_a_waiting_claim(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert register(http, "w1", cpus=1, memory_mb=100).status_code == 201
        first = submit(http, **ask(resources={"memory_mb": 100}))
        second = submit(http, **ask(resources={"memory_mb": 100}))
        held = claim_one(http, "w1")
        assert held["id"] == first["id"]
        got: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: got.append(claim(http, "w1", wait=30, n=1)), daemon=True
        )
        started = time.monotonic()
        waiting.start()
        time.sleep(0.5)  # the claim is waiting: nothing fits while the first job runs
        assert not got
        done = {"executor_id": "w1", "attempt": held["attempt"], "exit_code": 0}
        assert http.put(f"{API}/jobs/{first['id']}/complete", json=done).status_code == 200
        waiting.join(25)
        assert got and got[0].status_code == 200, got
        assert [j["id"] for j in got[0].json()] == [second["id"]]
        assert time.monotonic() - started < 20  # woken by the finish, not by its 30 s wait
