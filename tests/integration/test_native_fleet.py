"""Executors (worker agents) over real HTTP: register, heartbeat, list, deregister."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.test_native_api import (
    API,
    ISO_Z,
    assert_error,
    claim_one,
    details,
    submit,
)
from tests.live import LiveServer


def register(http: httpx.Client, executor_id: str, **extra: Any) -> httpx.Response:
    return http.post(f"{API}/executors", json={"executor_id": executor_id, **extra})


def beat(http: httpx.Client, executor_id: str, **body: Any) -> httpx.Response:
    return http.post(f"{API}/executors/{executor_id}/heartbeat", json=body)


def test_register_answers_201_with_the_executor(live_server: LiveServer) -> None:
    with live_server.client(live_server.token("worker")) as worker:
        answer = register(
            worker,
            "host-a-1",
            hostname="host-a",
            cpu_count=8,
            memory_mb=16000,
            os="linux",
            labels=["gpu"],
            concurrency=4,
            metadata={"rack": 3},
        )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["executor_id"] == "host-a-1"
    assert (body["hostname"], body["cpu_count"], body["memory_mb"]) == ("host-a", 8, 16000)
    assert (body["os"], body["labels"], body["concurrency"]) == ("linux", ["gpu"], 4)
    assert body["state"] == "online"
    assert body["current_job_id"] is None and body["jobs_completed"] == 0
    assert ISO_Z.match(body["last_heartbeat"]) and ISO_Z.match(body["registered_at"])
    assert body["ip"] == "127.0.0.1"


def test_register_needs_the_worker_or_admin_role(live_server: LiveServer) -> None:
    for role in ("submitter", "viewer"):
        with live_server.client(live_server.token(role)) as http:
            assert_error(register(http, f"by-{role}"), 403)
    with live_server.client() as admin:
        assert admin.get(f"{API}/executors").json() == []


def test_executors_list_is_a_bare_array(live_server: LiveServer) -> None:
    with live_server.client() as http:
        for name in ("b-exec", "a-exec"):
            assert register(http, name).status_code == 201
        answer = http.get(f"{API}/executors")
        assert answer.status_code == 200
        body = answer.json()
        assert isinstance(body, list)
        assert sorted(e["executor_id"] for e in body) == ["a-exec", "b-exec"]
        assert answer.headers.get("X-Total-Count") == "2"
        admin_view = http.get(f"{API}/admin/executors")
    assert admin_view.status_code == 200
    assert sorted(e["executor_id"] for e in admin_view.json()) == ["a-exec", "b-exec"]
    assert admin_view.headers.get("X-Total-Count") == "2"


def test_register_again_updates_in_place(live_server: LiveServer) -> None:
    with live_server.client() as http:
        register(http, "w", labels=["a"])
        again = register(http, "w", labels=["b"], concurrency=2)
        assert again.status_code == 201
        [only] = http.get(f"{API}/executors").json()
    assert (only["labels"], only["concurrency"]) == (["b"], 2)


def test_heartbeat_renews_held_leases_and_reports_lost_ones(live_server: LiveServer) -> None:
    with live_server.client(live_server.token("worker")) as worker, live_server.client() as admin:
        assert register(worker, "agent").status_code == 201
        first = submit(admin)["id"]
        second = submit(admin)["id"]
        job1 = claim_one(worker, "agent")
        job2 = claim_one(worker, "agent")
        assert (job1["id"], job2["id"]) == (first, second)
        answer = beat(
            worker,
            "agent",
            jobs=[
                {"job_id": first, "attempt": 1},
                {"job_id": second, "attempt": 7},
                {"job_id": "never-held", "attempt": 1},
            ],
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [r["job_id"] for r in body["renewed"]] == [first]
        renewed = body["renewed"][0]
        assert renewed["attempt"] == 1 and renewed["cancel_requested"] is False
        assert ISO_Z.match(renewed["lease_expires_at"])
        assert renewed["lease_expires_at"] >= job1["lease_expires_at"]
        assert body["lost"] == [second, "never-held"]
        assert body["cancel"] == []


def test_heartbeat_reports_user_cancellation(live_server: LiveServer) -> None:
    with live_server.client(live_server.token("worker")) as worker, live_server.client() as admin:
        register(worker, "agent")
        job_id = submit(admin)["id"]
        claim_one(worker, "agent")
        assert admin.delete(f"{API}/jobs/{job_id}").json()["cancel_requested"] is True
        body = beat(worker, "agent", jobs=[{"job_id": job_id, "attempt": 1}]).json()
        assert body["cancel"] == [job_id]
        assert body["renewed"][0]["cancel_requested"] is True
        assert body["lost"] == []
        reported = worker.post(
            f"{API}/jobs/results",
            json=[
                {
                    "job_id": job_id,
                    "executor_id": "agent",
                    "attempt": 1,
                    "status": "cancelled",
                    "exit_code": -15,
                }
            ],
        )
        assert reported.json()[0]["status"] == "cancelled"
        assert details(admin, job_id)["status"] == "cancelled"
        after = beat(worker, "agent", jobs=[{"job_id": job_id, "attempt": 1}]).json()
    assert after == {"renewed": [], "lost": [job_id], "cancel": []}


def test_heartbeat_of_finished_job_is_lost(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "agent")
        http.put(f"{API}/jobs/{job_id}/complete", json={"executor_id": "agent"})
        body = beat(http, "agent", jobs=[{"job_id": job_id, "attempt": 1}]).json()
    # "agent" only claimed, it never registered: the answer asks it to.
    assert body == {"renewed": [], "lost": [job_id], "cancel": [], "register": True}


def test_heartbeat_for_another_executors_job_is_lost(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http, "holder")
        body = beat(http, "thief", jobs=[{"job_id": job_id, "attempt": 1}]).json()
        assert body["lost"] == [job_id] and body["renewed"] == []


def test_draining_heartbeat_marks_the_executor(live_server: LiveServer) -> None:
    with live_server.client() as http:
        register(http, "agent")
        answer = beat(http, "agent", jobs=[], draining=True)
        assert answer.status_code == 200
        [row] = http.get(f"{API}/executors").json()
        assert row["state"] == "draining"
        register(http, "agent")  # re-registering comes back online
        [again] = http.get(f"{API}/executors").json()
    assert again["state"] == "online"


def test_draining_heartbeat_of_unknown_executor_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(beat(http, "ghost", draining=True), 404)


def test_executor_heartbeat_needs_the_execute_role(live_server: LiveServer) -> None:
    with live_server.client(live_server.token("submitter")) as http:
        assert_error(beat(http, "agent", jobs=[]), 403)


def test_deregister(live_server: LiveServer) -> None:
    owner_token, other_token = live_server.token("worker"), live_server.token("worker")
    with (
        live_server.client(owner_token) as owner,
        live_server.client(other_token) as other,
        live_server.client() as admin,
    ):
        register(owner, "mine")
        register(other, "theirs")
        assert_error(owner.delete(f"{API}/executors/theirs"), 403)
        answer = owner.delete(f"{API}/executors/mine")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"executor_id": "mine", "status": "deregistered"}
        assert [e["executor_id"] for e in admin.get(f"{API}/executors").json()] == ["theirs"]
        assert_error(owner.delete(f"{API}/executors/mine"), 404)
        assert admin.delete(f"{API}/executors/theirs").status_code == 200
        assert admin.get(f"{API}/executors").json() == []
        assert_error(admin.delete(f"{API}/executors/nobody"), 404)


def test_item8_a_heartbeat_renews_only_leases_held_by_its_own_token(
    live_server: LiveServer,
) -> None:
    with (
        live_server.client(live_server.token("worker")) as owner,
        live_server.client(live_server.token("worker")) as other,
        live_server.client() as admin,
    ):
        assert register(owner, "agent").status_code == 201
        job_id = submit(admin)["id"]
        claim_one(other, "agent")  # leased under the same id by another token
        answer = beat(owner, "agent", jobs=[{"job_id": job_id, "attempt": 1}])
        assert answer.status_code == 200, answer.text
        assert answer.json()["renewed"] == [] and answer.json()["lost"] == [job_id]


def test_item8_taking_over_an_id_hands_its_jobs_back(live_server: LiveServer) -> None:
    with live_server.client(live_server.token("worker")) as worker, live_server.client() as admin:
        assert register(worker, "agent").status_code == 201
        job_id = submit(admin)["id"]
        claim_one(worker, "agent")
        assert register(admin, "agent").status_code == 201  # an admin takes the id over
        job = details(admin, job_id)
        assert job["status"] == "pending"
        assert [a["status"] for a in job["attempts"]] == ["lost"]
        refused = beat(worker, "agent", jobs=[{"job_id": job_id, "attempt": 1}])
        assert refused.status_code == 403
