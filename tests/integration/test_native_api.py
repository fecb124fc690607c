"""The executor-queue document and docs/native-api.md over real HTTP: the submitter side.

Submit, list, details, cancel, bulk, admin views, health, metrics, idempotency,
authentication and bad input. The executor side is in ``test_native_executing.py``.
Shared helpers live here and are imported by the other ``test_native_*`` files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, run_server

API = "/api/v1"
SHA = "ab" * 32
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def job_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "data-processing",
        "binary_url": "https://example.com/binary",
        "binary_sha256": SHA,
        "arguments": ["arg1", "arg2"],
        "env_variables": {"KEY1": "value1", "KEY2": "value2"},
        "priority": "background",
    }
    body.update(overrides)
    return body


def submit(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    answer = http.post(f"{API}/jobs", json=job_body(**overrides))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def claim(http: httpx.Client, executor_id: str = "worker-1", **extra: Any) -> httpx.Response:
    return http.post(f"{API}/jobs/claim", json={"executor_id": executor_id, **extra})


def claim_one(http: httpx.Client, executor_id: str = "worker-1", **extra: Any) -> dict[str, Any]:
    answer = claim(http, executor_id, **extra)
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def details(http: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = http.get(f"{API}/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def total_jobs(http: httpx.Client) -> int:
    answer = http.get(f"{API}/jobs", params={"limit": 1})
    assert answer.status_code == 200, answer.text
    return int(answer.headers["X-Total-Count"])


def assert_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    """The documented error shape, with exactly ``status``."""
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "context"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["context"], dict)
    return body


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the many requests that must be refused and change nothing."""
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("CORRAL_"):
                env.delenv(name)
        data: Path = tmp_path_factory.mktemp("shared") / "data"
        with run_server(data) as server:
            yield server


# --- health and metrics ---------------------------------------------------------------


def test_health_needs_no_token(live_server: LiveServer) -> None:
    answer = httpx.get(f"{live_server.url}{API}/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "healthy", "database": "connected"}


def test_metrics_are_prometheus_text_counting_submissions(live_server: LiveServer) -> None:
    with live_server.client() as http:
        for _ in range(3):
            submit(http)
        answer = http.get(f"{API}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "# TYPE corral_jobs_submitted_total counter" in answer.text
    assert re.search(r"^corral_jobs_submitted_total 3\.0$", answer.text, re.M), answer.text
    assert re.search(r'^corral_pending_jobs\{priority="background"\} 3\.0$', answer.text, re.M)


def test_metrics_need_a_token(live_server: LiveServer) -> None:
    assert_error(httpx.get(f"{live_server.url}{API}/metrics"), 401)


# --- submit ---------------------------------------------------------------------------


def test_submit_answers_201_with_documented_fields(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.post(f"{API}/jobs", json=job_body())
    assert answer.status_code == 201
    body = answer.json()
    assert set(body) == {"id", "type", "status", "created_at"}
    assert re.fullmatch(r"[0-9a-f-]{36}", body["id"])
    assert body["type"] == "data-processing"
    assert body["status"] == "pending"
    assert ISO_Z.match(body["created_at"]), body["created_at"]


def test_submit_minimal_binary_job_and_command_job_defaults(live_server: LiveServer) -> None:
    with live_server.client() as http:
        minimal = {k: job_body()[k] for k in ("type", "binary_url", "binary_sha256", "priority")}
        first = http.post(f"{API}/jobs", json=minimal)
        assert first.status_code == 201, first.text
        job = details(http, first.json()["id"])
        assert job["arguments"] == [] and job["env_variables"] == {}
        second = http.post(f"{API}/jobs", json={"command": "echo hi"})
        assert second.status_code == 201, second.text
        job = details(http, second.json()["id"])
    assert job["type"] == "shell"
    assert job["priority"] == "background"
    assert job["command"] == "echo hi"
    assert job["timeout"] == 3600
    assert job["max_retries"] == 3


@pytest.mark.parametrize(
    ("given", "shown"),
    [("high", "foreground"), ("normal", "background"), ("low", "best_effort")],
)
def test_cmd_executor_priority_names_map_to_classes(
    live_server: LiveServer, given: str, shown: str
) -> None:
    with live_server.client() as http:
        job = details(http, submit(http, priority=given)["id"])
    assert job["priority"] == shown


def test_details_show_every_documented_field(live_server: LiveServer) -> None:
    with live_server.client() as http:
        created = submit(http, labels=["gpu"], timeout=60, max_retries=2)
        job = details(http, created["id"])
    documented = {
        "id",
        "type",
        "binary_url",
        "binary_sha256",
        "arguments",
        "env_variables",
        "priority",
        "status",
        "executor_id",
        "stdout",
        "stderr",
        "exit_code",
        "created_at",
        "started_at",
        "completed_at",
        "attempts",
    }
    extensions = {
        "command",
        "labels",
        "timeout",
        "max_retries",
        "attempt",
        "lease_expires_at",
        "cancel_requested",
        "error_message",
        "result",
        "stdout_truncated",
        "stderr_truncated",
        "finished_at",
    }
    assert documented | extensions <= set(job)
    assert job["id"] == created["id"]
    assert job["binary_url"] == "https://example.com/binary"
    assert job["binary_sha256"] == SHA
    assert job["arguments"] == ["arg1", "arg2"]
    assert job["env_variables"] == {"KEY1": "value1", "KEY2": "value2"}
    assert job["labels"] == ["gpu"]
    assert (job["timeout"], job["max_retries"], job["attempt"]) == (60, 2, 0)
    assert job["status"] == "pending"
    assert job["created_at"] == created["created_at"]
    assert job["executor_id"] is None and job["started_at"] is None
    assert job["attempts"] == [] and job["stdout"] == "" and job["stderr"] == ""
    assert job["cancel_requested"] is False


def test_details_of_unknown_job_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        body = assert_error(http.get(f"{API}/jobs/00000000-0000-0000-0000-000000000000"), 404)
    assert body["context"]["job_id"] == "00000000-0000-0000-0000-000000000000"


# --- list -----------------------------------------------------------------------------


def _seed_for_listing(http: httpx.Client) -> dict[str, list[str]]:
    ids: dict[str, list[str]] = {"alpha": [], "beta": [], "fg": []}
    for _ in range(3):
        ids["alpha"].append(submit(http, type="alpha", priority="background")["id"])
    for _ in range(2):
        ids["beta"].append(submit(http, type="beta", priority="best_effort")["id"])
    ids["fg"].append(submit(http, type="alpha", priority="foreground")["id"])
    return ids


def test_list_is_a_bare_array_with_total_count(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ids = _seed_for_listing(http)
        answer = http.get(f"{API}/jobs")
    assert answer.status_code == 200
    assert answer.headers["X-Total-Count"] == "6"
    body = answer.json()
    assert isinstance(body, list) and len(body) == 6
    assert {j["id"] for j in body} == set(ids["alpha"] + ids["beta"] + ids["fg"])
    row = body[0]
    assert {"id", "type", "status", "priority", "executor_id", "created_at", "started_at"} <= set(
        row
    )
    assert ISO_Z.match(row["created_at"])


def test_list_filters_by_type_priority_and_status(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ids = _seed_for_listing(http)
        running = claim_one(http)  # the foreground job goes first
        assert running["id"] == ids["fg"][0]

        by_type = http.get(f"{API}/jobs", params={"type": "beta"})
        assert by_type.headers["X-Total-Count"] == "2"
        assert {j["id"] for j in by_type.json()} == set(ids["beta"])

        by_priority = http.get(f"{API}/jobs", params={"priority": "best_effort"})
        assert {j["id"] for j in by_priority.json()} == set(ids["beta"])
        by_level = http.get(f"{API}/jobs", params={"priority": "low"})
        assert {j["id"] for j in by_level.json()} == set(ids["beta"])

        by_status = http.get(f"{API}/jobs", params={"status": "running"})
        assert by_status.headers["X-Total-Count"] == "1"
        [row] = by_status.json()
        assert row["id"] == ids["fg"][0]
        assert row["executor_id"] == "worker-1"
        assert ISO_Z.match(row["started_at"])

        combined = http.get(
            f"{API}/jobs", params={"status": "pending", "type": "alpha", "priority": "background"}
        )
        assert {j["id"] for j in combined.json()} == set(ids["alpha"])
        assert combined.headers["X-Total-Count"] == "3"
        none = http.get(f"{API}/jobs", params={"status": "cancelled"})
        assert none.json() == [] and none.headers["X-Total-Count"] == "0"


def test_list_paginates_with_limit_and_offset(live_server: LiveServer) -> None:
    with live_server.client() as http:
        created = [submit(http)["id"] for _ in range(5)]
        pages = []
        for offset in (0, 2, 4):
            answer = http.get(f"{API}/jobs", params={"limit": 2, "offset": offset})
            assert answer.status_code == 200
            assert answer.headers["X-Total-Count"] == "5"
            pages.append([j["id"] for j in answer.json()])
        past_end = http.get(f"{API}/jobs", params={"limit": 2, "offset": 10})
    assert [len(p) for p in pages] == [2, 2, 1]
    seen = [i for page in pages for i in page]
    assert sorted(seen) == sorted(created)
    assert len(set(seen)) == 5
    assert past_end.json() == [] and past_end.headers["X-Total-Count"] == "5"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 1001},
        {"limit": 0},
        {"limit": -1},
        {"limit": "ten"},
        {"offset": -1},
        {"status": "bogus"},
        {"priority": "urgent"},
    ],
)
def test_list_rejects_bad_parameters(shared_server: LiveServer, params: dict[str, Any]) -> None:
    with shared_server.client() as http:
        assert_error(http.get(f"{API}/jobs", params=params), 400)


def test_list_accepts_limit_1000(live_server: LiveServer) -> None:
    with live_server.client() as http:
        submit(http)
        answer = http.get(f"{API}/jobs", params={"limit": 1000})
    assert answer.status_code == 200
    assert len(answer.json()) == 1


# --- cancel ---------------------------------------------------------------------------


def test_cancel_pending_job(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        answer = http.delete(f"{API}/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "cancelled"
        job = details(http, job_id)
        assert job["status"] == "cancelled"
        assert ISO_Z.match(job["completed_at"])
        assert claim(http).status_code == 204  # a cancelled job is never offered


def test_cancel_running_job_requests_cancellation(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        leased = claim_one(http)
        answer = http.delete(f"{API}/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"id": job_id, "status": "running", "cancel_requested": True}
        beat = http.put(
            f"{API}/jobs/{job_id}/heartbeat",
            json={"executor_id": "worker-1", "attempt": leased["attempt"]},
        )
        assert beat.status_code == 200, beat.text
        assert beat.json()["cancel_requested"] is True
        assert details(http, job_id)["cancel_requested"] is True
        report = http.post(
            f"{API}/jobs/results",
            json=[
                {"job_id": job_id, "executor_id": "worker-1", "attempt": 1, "status": "cancelled"}
            ],
        )
        assert report.json() == [{"job_id": job_id, "ok": True, "status": "cancelled"}]
        assert details(http, job_id)["status"] == "cancelled"


@pytest.mark.parametrize("outcome", ["complete", "fail"])
def test_cancel_finished_job_is_400(live_server: LiveServer, outcome: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        done = http.put(
            f"{API}/jobs/{job_id}/{outcome}", json={"executor_id": "worker-1", "exit_code": 0}
        )
        assert done.status_code == 200, done.text
        assert_error(http.delete(f"{API}/jobs/{job_id}"), 400)
        assert details(http, job_id)["status"] == (
            "completed" if outcome == "complete" else "failed"
        )


def test_cancel_cancelled_job_is_400(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        assert http.delete(f"{API}/jobs/{job_id}").status_code == 200
        assert_error(http.delete(f"{API}/jobs/{job_id}"), 400)


def test_cancel_unknown_job_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(http.delete(f"{API}/jobs/no-such-job"), 404)


# --- bulk -----------------------------------------------------------------------------


def test_bulk_submit_answers_201_array_of_id_and_status(live_server: LiveServer) -> None:
    items = [
        job_body(type="job-1", priority="background"),
        job_body(type="job-2", priority="foreground", binary_url="https://example.com/b2"),
        {"command": "echo three"},
    ]
    with live_server.client() as http:
        answer = http.post(f"{API}/jobs/bulk", json=items)
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert isinstance(body, list) and len(body) == 3
        assert all(set(row) == {"id", "status"} and row["status"] == "pending" for row in body)
        assert len({row["id"] for row in body}) == 3
        types = [details(http, row["id"])["type"] for row in body]
        assert total_jobs(http) == 3
    assert types == ["job-1", "job-2", "shell"]


@pytest.mark.parametrize(
    "bad_item",
    [
        {"binary_sha256": "not-a-hash"},
        {"priority": "urgent"},
        {"type": "has space"},
        {"timeout": 0},
        {"env_variables": {"1BAD": "x"}},
        {"arguments": "not-a-list"},
        {"priority": None},
    ],
)
def test_bulk_submit_is_all_or_nothing(live_server: LiveServer, bad_item: dict[str, Any]) -> None:
    with live_server.client() as http:
        submit(http)
        before = total_jobs(http)
        items = [job_body(type="good-1"), job_body(**bad_item), job_body(type="good-2")]
        assert_error(http.post(f"{API}/jobs/bulk", json=items), 400)
        assert total_jobs(http) == before
        assert http.get(f"{API}/jobs", params={"type": "good-1"}).json() == []


@pytest.mark.parametrize("body", [[], {"type": "x"}, "text", None])
def test_bulk_submit_rejects_non_lists_and_empty(live_server: LiveServer, body: Any) -> None:
    with live_server.client() as http:
        assert_error(http.post(f"{API}/jobs/bulk", json=body), 400)
        assert total_jobs(http) == 0


def test_bulk_cancel_counts_cancelled_and_failed(live_server: LiveServer) -> None:
    with live_server.client() as http:
        pending = [submit(http)["id"] for _ in range(2)]
        finished = submit(http, priority="foreground")["id"]
        claim_one(http)
        http.put(
            f"{API}/jobs/{finished}/complete", json={"executor_id": "worker-1", "exit_code": 0}
        )
        answer = http.post(
            f"{API}/jobs/bulk/cancel", json={"job_ids": [*pending, finished, "missing-job"]}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["cancelled"] == 2
        assert body["failed"] == 2
        codes = {e["job_id"]: e["code"] for e in body["errors"]}
        assert codes == {finished: 400, "missing-job": 404}
        assert all(isinstance(e["error"], str) and e["error"] for e in body["errors"])
        assert [details(http, i)["status"] for i in pending] == ["cancelled", "cancelled"]


def test_bulk_cancel_all_good(live_server: LiveServer) -> None:
    with live_server.client() as http:
        ids = [submit(http)["id"] for _ in range(3)]
        answer = http.post(f"{API}/jobs/bulk/cancel", json={"job_ids": ids})
    assert answer.status_code == 200
    assert answer.json() == {"cancelled": 3, "failed": 0, "errors": []}


# --- admin ------------------------------------------------------------------------------


def test_admin_stats_count_every_status_and_priority(live_server: LiveServer) -> None:
    with live_server.client() as http:
        empty = http.get(f"{API}/admin/stats")
        assert empty.status_code == 200
        assert empty.json() == {
            "jobs_by_status": dict.fromkeys(
                ("pending", "running", "completed", "failed", "cancelled"), 0
            ),
            "pending_by_priority": {"foreground": 0, "background": 0, "best_effort": 0},
            "active_executors": 0,
        }
        # three jobs that will leave the queue, all foreground so they are claimed first
        to_run = [submit(http, priority="foreground")["id"] for _ in range(3)]
        leased = [claim_one(http, "worker-a")["id"] for _ in range(3)]
        assert leased == to_run
        http.put(
            f"{API}/jobs/{to_run[0]}/complete", json={"executor_id": "worker-a", "exit_code": 0}
        )
        http.put(f"{API}/jobs/{to_run[1]}/fail", json={"executor_id": "worker-a", "exit_code": 1})
        http.delete(f"{API}/jobs/{submit(http, priority='best_effort')['id']}")
        for priority, count in (("foreground", 1), ("background", 2), ("best_effort", 3)):
            for _ in range(count):
                submit(http, priority=priority)
        answer = http.get(f"{API}/admin/stats")
    assert answer.status_code == 200
    assert answer.json() == {
        "jobs_by_status": {
            "pending": 6,
            "running": 1,
            "completed": 1,
            "failed": 1,
            "cancelled": 1,
        },
        "pending_by_priority": {"foreground": 1, "background": 2, "best_effort": 3},
        "active_executors": 1,
    }


def test_admin_executors_show_documented_fields(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = submit(http, type="render")["id"]
        claim_one(http, "worker-1-abc123", executor_ip="192.168.1.100")
        answer = http.get(f"{API}/admin/executors")
        assert answer.status_code == 200
        [row] = answer.json()
        assert row["executor_id"] == "worker-1-abc123"
        assert row["current_job_id"] == job_id
        assert row["job_type"] == "render"
        assert ISO_Z.match(row["last_heartbeat"])
        assert row["jobs_completed"] == 0
        http.put(
            f"{API}/jobs/{job_id}/complete", json={"executor_id": "worker-1-abc123", "exit_code": 0}
        )
        [after] = http.get(f"{API}/admin/executors").json()
    assert after["current_job_id"] is None and after["job_type"] is None
    assert after["jobs_completed"] == 1


# --- idempotency --------------------------------------------------------------------------


def test_idempotent_submit_replays_the_same_bytes(live_server: LiveServer) -> None:
    body = job_body(type="idem")
    with live_server.client() as http:
        headers = {"Idempotency-Key": "key-1"}
        first = http.post(f"{API}/jobs", json=body, headers=headers)
        second = http.post(f"{API}/jobs", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.content == second.content
        assert total_jobs(http) == 1
        changed = http.post(f"{API}/jobs", json=job_body(type="other"), headers=headers)
        assert_error(changed, 422)
        assert total_jobs(http) == 1
        fresh = http.post(f"{API}/jobs", json=body, headers={"Idempotency-Key": "key-2"})
        assert fresh.status_code == 201
        assert fresh.json()["id"] != first.json()["id"]
        assert total_jobs(http) == 2


def test_idempotent_bulk_submit_replays(live_server: LiveServer) -> None:
    items = [job_body(type="b1"), job_body(type="b2")]
    with live_server.client() as http:
        headers = {"Idempotency-Key": "bulk-key"}
        first = http.post(f"{API}/jobs/bulk", json=items, headers=headers)
        second = http.post(f"{API}/jobs/bulk", json=items, headers=headers)
        assert first.status_code == second.status_code == 201
        assert first.content == second.content
        assert total_jobs(http) == 2


def test_idempotency_keys_are_per_caller(live_server: LiveServer) -> None:
    alice, bob = live_server.token("submitter"), live_server.token("submitter")
    headers = {"Idempotency-Key": "shared-key"}
    with live_server.client(alice) as a, live_server.client(bob) as b:
        first = a.post(f"{API}/jobs", json=job_body(), headers=headers)
        other = b.post(f"{API}/jobs", json=job_body(), headers=headers)
        assert first.status_code == other.status_code == 201
        assert first.json()["id"] != other.json()["id"]
        # a different body under bob's key is bob's business, not a clash with alice's
        assert_error(b.post(f"{API}/jobs", json=job_body(type="x"), headers=headers), 422)
        assert total_jobs(a) == 2


# --- authentication and roles ---------------------------------------------------------------

EVERY_AUTHENTICATED_ROUTE = [
    ("GET", "/metrics"),
    ("POST", "/jobs"),
    ("GET", "/jobs"),
    ("GET", "/jobs/x"),
    ("DELETE", "/jobs/x"),
    ("POST", "/jobs/bulk"),
    ("POST", "/jobs/bulk/cancel"),
    ("POST", "/jobs/claim"),
    ("PUT", "/jobs/x/heartbeat"),
    ("PUT", "/jobs/x/complete"),
    ("PUT", "/jobs/x/fail"),
    ("POST", "/jobs/results"),
    ("POST", "/jobs/x/release"),
    ("POST", "/jobs/x/output"),
    ("GET", "/jobs/x/output"),
    ("GET", "/jobs/x/output/follow"),
    ("POST", "/executors"),
    ("GET", "/executors"),
    ("POST", "/executors/x/heartbeat"),
    ("DELETE", "/executors/x"),
    ("GET", "/admin/stats"),
    ("GET", "/admin/executors"),
    ("POST", "/admin/tokens"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_AUTHENTICATED_ROUTE)
def test_every_route_but_health_needs_a_valid_token(
    shared_server: LiveServer, method: str, path: str
) -> None:
    url = f"{shared_server.url}{API}{path}"
    body = {"executor_id": "w"} if method in ("POST", "PUT") else None
    with httpx.Client(timeout=10) as http:
        missing = http.request(method, url, json=body)
        assert_error(missing, 401)
        assert missing.headers.get("www-authenticate") == "Bearer"
        bad = http.request(method, url, json=body, headers={"Authorization": "Bearer nope"})
        assert_error(bad, 401)
        basic = http.request(method, url, json=body, headers={"Authorization": "Basic eDp5"})
        assert_error(basic, 401)


@pytest.mark.parametrize("role", ["viewer", "worker"])
def test_viewer_and_worker_cannot_submit(live_server: LiveServer, role: str) -> None:
    with live_server.client(live_server.token(role)) as http:
        assert_error(http.post(f"{API}/jobs", json=job_body()), 403)
        assert_error(http.post(f"{API}/jobs/bulk", json=[job_body()]), 403)
    with live_server.client() as admin:
        assert total_jobs(admin) == 0


def test_submitter_and_viewer_cannot_claim(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        job_id = submit(admin)["id"]
    for role in ("submitter", "viewer"):
        with live_server.client(live_server.token(role)) as http:
            assert_error(claim(http), 403)
            assert_error(
                http.put(f"{API}/jobs/{job_id}/complete", json={"executor_id": "worker-1"}), 403
            )
    with live_server.client() as admin:
        assert details(admin, job_id)["status"] == "pending"


def test_viewer_reads_but_cannot_cancel(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        job_id = submit(admin)["id"]
    with live_server.client(live_server.token("viewer")) as http:
        assert details(http, job_id)["status"] == "pending"
        assert http.get(f"{API}/jobs").status_code == 200
        assert http.get(f"{API}/admin/stats").status_code == 200
        assert_error(http.delete(f"{API}/jobs/{job_id}"), 403)
        assert_error(http.post(f"{API}/admin/tokens", json={"role": "admin"}), 403)


def test_submitter_cancels_only_its_own_jobs(live_server: LiveServer) -> None:
    alice, bob = live_server.token("submitter"), live_server.token("submitter")
    with live_server.client(alice) as a, live_server.client(bob) as b:
        job_id = submit(a)["id"]
        assert_error(b.delete(f"{API}/jobs/{job_id}"), 403)
        assert details(a, job_id)["status"] == "pending"
        assert a.delete(f"{API}/jobs/{job_id}").status_code == 200


def test_worker_token_claims_and_completes(live_server: LiveServer) -> None:
    with live_server.client() as admin:
        job_id = submit(admin)["id"]
    with live_server.client(live_server.token("worker")) as worker:
        assert_error(worker.get(f"{API}/jobs"), 403)  # workers execute, they do not browse
        job = claim_one(worker, "w-1")
        assert job["id"] == job_id
        done = worker.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "w-1", "attempt": job["attempt"], "exit_code": 0, "stdout": "ok"},
        )
        assert done.status_code == 200, done.text
    with live_server.client() as admin:
        assert details(admin, job_id)["status"] == "completed"


def test_worker_cannot_act_on_a_lease_held_by_another_worker_token(
    live_server: LiveServer,
) -> None:
    with live_server.client() as admin:
        job_id = submit(admin)["id"]
    first, second = live_server.token("worker"), live_server.token("worker")
    with live_server.client(first) as owner, live_server.client(second) as intruder:
        job = claim_one(owner, "shared-name")
        call = {"executor_id": "shared-name", "attempt": job["attempt"], "exit_code": 0}
        assert_error(intruder.put(f"{API}/jobs/{job_id}/complete", json=call), 403)
        assert_error(intruder.put(f"{API}/jobs/{job_id}/fail", json=call), 403)
        assert_error(intruder.put(f"{API}/jobs/{job_id}/heartbeat", json=call), 403)
        assert_error(
            intruder.post(
                f"{API}/jobs/{job_id}/output", json={**call, "stream": "stdout", "data": "x"}
            ),
            403,
        )
        assert_error(intruder.post(f"{API}/jobs/{job_id}/release", json=call), 403)
        assert owner.put(f"{API}/jobs/{job_id}/complete", json=call).status_code == 200
    with live_server.client() as admin:
        job_after = details(admin, job_id)
    assert job_after["status"] == "completed"
    assert job_after["stdout"] == ""


def test_admin_mints_tokens_of_known_roles_only(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.post(f"{API}/admin/tokens", json={"role": "viewer", "name": "v"})
        assert answer.status_code == 201
        assert {"id", "name", "role", "token"} <= set(answer.json())
        assert_error(http.post(f"{API}/admin/tokens", json={"role": "root"}), 400)
    with live_server.client(answer.json()["token"]) as viewer:
        assert viewer.get(f"{API}/jobs").status_code == 200


# --- bad input everywhere -----------------------------------------------------------------

BAD_SUBMISSIONS: list[tuple[str, dict[str, Any]]] = [
    ("missing type", {k: v for k, v in job_body().items() if k != "type"}),
    ("missing priority", {k: v for k, v in job_body().items() if k != "priority"}),
    ("missing sha256", {k: v for k, v in job_body().items() if k != "binary_sha256"}),
    ("nothing to run", {"type": "x", "priority": "background"}),
    ("empty body", {}),
    ("type with space", job_body(type="data processing")),
    ("type not a string", job_body(type=5)),
    ("unknown priority", job_body(priority="urgent")),
    ("priority not a string", job_body(priority=1)),
    ("short sha256", job_body(binary_sha256="abc123")),
    ("non-hex sha256", job_body(binary_sha256="z" * 64)),
    ("url not http", job_body(binary_url="ftp://example.com/b")),
    ("both command and binary", job_body(command="echo")),
    ("empty command", {"command": "   "}),
    ("arguments not a list", job_body(arguments="a b")),
    ("argument not a string", job_body(arguments=[1])),
    ("env not an object", job_body(env_variables=["A=1"])),
    ("env name starts with digit", job_body(env_variables={"1KEY": "v"})),
    ("env name with dash", job_body(env_variables={"MY-KEY": "v"})),
    ("env value not a string", job_body(env_variables={"KEY": 1})),
    ("timeout zero", job_body(timeout=0)),
    ("timeout too long", job_body(timeout=86401)),
    ("timeout not a number", job_body(timeout="soon")),
    ("max_retries negative", job_body(max_retries=-1)),
    ("max_retries too many", job_body(max_retries=101)),
    ("bad label", job_body(labels=["has space"])),
    ("lease too short", job_body(lease_seconds=0)),
]


@pytest.mark.parametrize(
    "body", [b for _, b in BAD_SUBMISSIONS], ids=[name for name, _ in BAD_SUBMISSIONS]
)
def test_submit_rejects_bad_jobs_with_400(shared_server: LiveServer, body: dict[str, Any]) -> None:
    with shared_server.client() as http:
        before = total_jobs(http)
        assert_error(http.post(f"{API}/jobs", json=body), 400)
        assert total_jobs(http) == before


def test_submit_error_names_the_field(live_server: LiveServer) -> None:
    with live_server.client() as http:
        sha = assert_error(http.post(f"{API}/jobs", json=job_body(binary_sha256="x")), 400)
        env = assert_error(http.post(f"{API}/jobs", json=job_body(env_variables={"A B": "x"})), 400)
        timeout = assert_error(http.post(f"{API}/jobs", json=job_body(timeout=0)), 400)
        missing = assert_error(
            http.post(f"{API}/jobs", json={k: v for k, v in job_body().items() if k != "type"}),
            400,
        )
    assert sha["context"]["field"] == "binary_sha256"
    assert env["context"]["field"] in ("env", "env_variables")
    assert timeout["context"]["field"] == "timeout"
    assert missing["context"]["field"] == "type"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/jobs"),
        ("POST", "/jobs/bulk"),
        ("POST", "/jobs/bulk/cancel"),
        ("POST", "/jobs/claim"),
        ("PUT", "/jobs/x/heartbeat"),
        ("PUT", "/jobs/x/complete"),
        ("PUT", "/jobs/x/fail"),
        ("POST", "/jobs/results"),
        ("POST", "/jobs/x/release"),
        ("POST", "/jobs/x/output"),
        ("POST", "/executors"),
        ("POST", "/executors/x/heartbeat"),
        ("POST", "/admin/tokens"),
    ],
)
@pytest.mark.parametrize("payload", [b"{not json", b"", b'{"a": 1', b"\xff\xfe"])
def test_invalid_json_is_400_everywhere(
    shared_server: LiveServer, method: str, path: str, payload: bytes
) -> None:
    with shared_server.client() as http:
        answer = http.request(
            method, f"{API}{path}", content=payload, headers={"Content-Type": "application/json"}
        )
        assert_error(answer, 400)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/jobs", ["not", "an", "object"]),
        ("POST", "/jobs", "a string"),
        ("POST", "/jobs/bulk/cancel", {}),
        ("POST", "/jobs/bulk/cancel", {"job_ids": "abc"}),
        ("POST", "/jobs/bulk/cancel", {"job_ids": [1, 2]}),
        ("POST", "/jobs/claim", {}),
        ("POST", "/jobs/claim", {"executor_id": ""}),
        ("POST", "/jobs/claim", {"executor_id": 7}),
        ("POST", "/jobs/claim", {"executor_id": "w", "n": 0}),
        ("POST", "/jobs/claim", {"executor_id": "w", "n": 101}),
        ("POST", "/jobs/claim", {"executor_id": "w", "wait": 61}),
        ("POST", "/jobs/claim", {"executor_id": "w", "wait": -1}),
        ("POST", "/jobs/claim", {"executor_id": "w", "labels": "gpu"}),
        ("PUT", "/jobs/x/heartbeat", {}),
        ("PUT", "/jobs/x/heartbeat", {"executor_id": "w", "attempt": 0}),
        ("PUT", "/jobs/x/complete", {"executor_id": "w", "exit_code": "zero"}),
        ("PUT", "/jobs/x/fail", {"executor_id": "w", "retry": "perhaps"}),
        ("PUT", "/jobs/x/fail", {"stderr": "no executor"}),
        ("POST", "/jobs/results", {"job_id": "x"}),
        ("POST", "/jobs/results", [{"job_id": "x", "executor_id": "w", "status": "done"}]),
        ("POST", "/jobs/results", [{"job_id": "x", "executor_id": "w"}]),
        ("POST", "/jobs/results", [{"job_id": "x", "executor_id": "w", "status": "pending"}]),
        ("POST", "/jobs/x/release", {"attempt": 1}),
        ("POST", "/jobs/x/output", {"executor_id": "w", "stream": "stdin", "data": "x"}),
        ("POST", "/jobs/x/output", {"executor_id": "w", "stream": "stdout"}),
        ("POST", "/executors", {}),
        ("POST", "/executors", {"executor_id": "w", "cpu_count": -1}),
        ("POST", "/executors", {"executor_id": "w", "concurrency": 0}),
        ("POST", "/executors/x/heartbeat", {"jobs": [{"job_id": "j"}]}),
        ("POST", "/executors/x/heartbeat", {"jobs": "all"}),
        ("POST", "/admin/tokens", {}),
    ],
)
def test_wrong_shapes_are_400(shared_server: LiveServer, method: str, path: str, body: Any) -> None:
    with shared_server.client() as http:
        assert_error(http.request(method, f"{API}{path}", json=body), 400)


@pytest.mark.parametrize(
    "params", [{"stream": "stdin"}, {"offset": -1}, {"limit": 0}, {"offset": "start"}]
)
def test_output_read_rejects_bad_parameters(
    shared_server: LiveServer, params: dict[str, Any]
) -> None:
    with shared_server.client() as http:
        job_id = submit(http)["id"]
        assert_error(http.get(f"{API}/jobs/{job_id}/output", params=params), 400)


def test_unknown_paths_and_methods_answer_in_the_error_shape(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(http.get(f"{API}/nowhere"), 404)
        assert_error(http.patch(f"{API}/jobs", json={}), 405)
        assert_error(http.put(f"{API}/health"), 405)


BIG = 2**70
HOSTILE: list[tuple[str, str, bytes]] = [
    ("POST", "/jobs", b'{"command": "echo \\ud800"}'),
    ("POST", "/jobs", b'{"command": "echo", "type": "\\udfff"}'),
    ("POST", "/jobs", b'{"command": "echo", "env_variables": {"K": "\\ud800"}}'),
    ("POST", "/jobs", b'{"command": "echo", "variables": {"x": %d}}' % BIG),
    ("POST", "/jobs", b'{"command": "echo", "variables": {"x": [1, -%d]}}' % BIG),
    ("POST", "/jobs", b'{"command": "echo", "timeout": %d}' % BIG),
    ("POST", "/jobs", b'{"command": "echo", "max_retries": %d}' % BIG),
    ("POST", "/jobs", b'{"command": "echo", "lease_seconds": 1e400}'),
    ("POST", "/jobs/bulk", b'[{"command": "echo"}, {"command": "\\ud800"}]'),
    ("POST", "/jobs/claim", b'{"executor_id": "\\ud800"}'),
    ("POST", "/jobs/claim", b'{"executor_id": "w", "labels": ["\\ud800"]}'),
    ("PUT", "/jobs/{job}/complete", b'{"executor_id": "worker-1", "exit_code": %d}' % BIG),
    ("PUT", "/jobs/{job}/complete", b'{"executor_id": "worker-1", "result": {"n": %d}}' % BIG),
    ("PUT", "/jobs/{job}/complete", b'{"executor_id": "worker-1", "stdout": "\\udfff"}'),
    ("PUT", "/jobs/{job}/fail", b'{"executor_id": "worker-1", "error_message": "\\ud800"}'),
    ("PUT", "/jobs/{job}/heartbeat", b'{"executor_id": "worker-1", "attempt": %d}' % BIG),
    (
        "POST",
        "/jobs/{job}/output",
        b'{"executor_id": "worker-1", "stream": "stdout", "data": "\\ud800"}',
    ),
    (
        "POST",
        "/jobs/results",
        b'[{"job_id": "{job}", "executor_id": "worker-1", "status": "completed", "exit_code": %d}]'
        % BIG,
    ),
    ("POST", "/executors", b'{"executor_id": "e", "cpu_count": %d}' % BIG),
    ("POST", "/executors", b'{"executor_id": "e", "memory_mb": %d}' % BIG),
    ("POST", "/executors", b'{"executor_id": "e", "metadata": {"x": %d}}' % BIG),
    ("POST", "/executors", b'{"executor_id": "e", "hostname": "\\ud800"}'),
    ("POST", "/executors/e/heartbeat", b'{"jobs": [{"job_id": "{job}", "attempt": %d}]}' % BIG),
    ("POST", "/admin/tokens", b'{"role": "viewer", "name": "\\ud800"}'),
]


@pytest.mark.parametrize(("method", "path", "payload"), HOSTILE)
def test_values_the_store_cannot_hold_are_400_not_500(
    live_server: LiveServer, method: str, path: str, payload: bytes
) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        claim_one(http)
        before = details(http, job_id)
        answer = http.request(
            method,
            f"{API}{path.replace('{job}', job_id)}",
            content=payload.replace(b"{job}", job_id.encode()),
            headers={"Content-Type": "application/json"},
        )
        assert_error(answer, 400)
        after = details(http, job_id)
        assert total_jobs(http) == 1
        assert http.get(f"{API}/executors").json()[0]["executor_id"] == "worker-1"
    assert (after["status"], after["stdout"], after["attempt"]) == ("running", "", 1)
    assert after["lease_expires_at"] == before["lease_expires_at"]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/jobs", {"offset": BIG}),
        ("/jobs", {"limit": BIG}),
        ("/jobs/{job}/output", {"offset": BIG}),
        ("/jobs/{job}/output", {"limit": BIG}),
    ],
)
def test_huge_query_numbers_are_400(
    live_server: LiveServer, path: str, params: dict[str, Any]
) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        assert_error(http.get(f"{API}{path.replace('{job}', job_id)}", params=params), 400)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/jobs/%ED%A0%80", 404),
        ("GET", "/jobs/%ED%A0%80/output", 404),
        ("DELETE", "/jobs/%ED%A0%80", 404),
        ("GET", "/jobs?type=%ED%A0%80", 200),
        ("GET", "/jobs?status=%ED%A0%80", 400),
    ],
)
def test_invalid_utf8_in_urls_never_breaks_the_server(
    shared_server: LiveServer, method: str, path: str, status: int
) -> None:
    with shared_server.client() as http:
        answer = http.request(method, f"{API}{path}")
        assert answer.status_code == status, answer.text
        if status >= 400:
            assert_error(answer, status)
        assert http.get(f"{API}/jobs").status_code == 200


def test_overlong_idempotency_key_is_400(live_server: LiveServer) -> None:
    with live_server.client() as http:
        answer = http.post(f"{API}/jobs", json=job_body(), headers={"Idempotency-Key": "k" * 201})
        assert_error(answer, 400)
        assert total_jobs(http) == 0
