"""Dependencies and workflows over real HTTP (issue 15): submit with ``depends_on``,
the workflows routes, idempotency, 400s naming what is wrong, and the wake-up of a
long-polling claimer when the last dependency ends."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_dashboard_job import sign_in
from tests.integration.test_native_api import API, assert_error
from tests.live import LiveServer, run_server
from tests.pg_server import PgServer
from tests.processes import CORRAL, clean_env

ADMIN = ("root@example.com", "admin-password")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data = tmp_path_factory.mktemp("wf") / "data"
    with run_server(
        data, admin_email=ADMIN[0], admin_password=ADMIN[1], login_rate_limit="off"
    ) as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def submit(http: httpx.Client, command: str = "true", **extra: Any) -> dict[str, Any]:
    answer = http.post(f"{API}/jobs", json={"command": command, **extra})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def claim_all(http: httpx.Client, executor: str = "wf-worker") -> list[dict[str, Any]]:
    answer = http.post(f"{API}/jobs/claim", json={"executor_id": executor, "n": 100})
    if answer.status_code == 204:
        return []
    assert answer.status_code == 200, answer.text
    jobs: list[dict[str, Any]] = answer.json()
    return jobs


def finish(http: httpx.Client, job: dict[str, Any], ok: bool = True, **extra: Any) -> None:
    verb = "complete" if ok else "fail"
    body = {"executor_id": "wf-worker", "attempt": job["attempt"], **extra}
    answer = http.put(f"{API}/jobs/{job['id']}/{verb}", json=body)
    assert answer.status_code == 200, answer.text


def test_item15_depends_on_blocks_and_result_is_readable_by_the_dependant(
    server: LiveServer, http: httpx.Client
) -> None:
    claim_all(http)  # whatever earlier tests left
    parent = submit(http, "echo parent")
    child = submit(http, "echo child", depends_on=[parent["id"]])
    shown = http.get(f"{API}/jobs/{child['id']}").json()
    assert (shown["status"], shown["blocked"], shown["run_if"]) == ("pending", True, "success")
    [claimed] = claim_all(http)
    assert claimed["id"] == parent["id"]
    finish(http, claimed, result={"artifact": "build-42"})
    # A worker holding the dependant's lease reads its parents' results; another cannot.
    with (
        server.client(server.token("worker")) as holder,
        server.client(server.token("worker")) as other,
    ):
        [claimed] = claim_all(holder, "wf-holder")
        assert claimed["id"] == child["id"] and claimed["blocked"] is False
        deps = holder.get(f"{API}/jobs/{child['id']}/dependencies")
        assert deps.status_code == 200, deps.text
        assert deps.json()["depends_on"][0]["result"] == {"artifact": "build-42"}
        assert_error(other.get(f"{API}/jobs/{child['id']}/dependencies"), 403)
        assert_error(other.get(f"{API}/jobs/{parent['id']}/dependencies"), 403)
        body = {"executor_id": "wf-holder", "attempt": claimed["attempt"], "exit_code": 0}
        assert holder.put(f"{API}/jobs/{child['id']}/complete", json=body).status_code == 200
    assert http.get(f"{API}/jobs/{parent['id']}/dependencies").json()["dependants"] == [
        {"id": child["id"], "status": "completed"}
    ]


def test_item15_failed_dependency_cancels_with_a_reason(http: httpx.Client) -> None:
    claim_all(http)
    parent = submit(http)
    child = submit(http, depends_on=[parent["id"]])
    handler = submit(http, depends_on=[parent["id"]], run_if="failure")
    [claimed] = claim_all(http)
    finish(http, claimed, ok=False, error_message="boom")
    shown = http.get(f"{API}/jobs/{child['id']}").json()
    assert shown["status"] == "cancelled"
    assert shown["error_message"] == f"not run: dependency {parent['id']} failed"
    assert [j["id"] for j in claim_all(http)] == [handler["id"]]


def test_item15_bad_dependencies_are_400s(http: httpx.Client) -> None:
    body = assert_error(
        http.post(f"{API}/jobs", json={"command": "true", "depends_on": ["no-such-job"]}), 400
    )
    assert "no-such-job" in body["error"]
    too_many = [f"id-{i}" for i in range(1001)]
    assert_error(http.post(f"{API}/jobs", json={"command": "true", "depends_on": too_many}), 400)
    assert_error(http.post(f"{API}/jobs", json={"command": "true", "run_if": "sometimes"}), 400)


def test_item15_claimer_wakes_when_the_last_dependency_ends(http: httpx.Client) -> None:
    """No polling delay: a parked long-poll claim gets the dependant at once."""
    claim_all(http)
    parent = submit(http)
    [claimed] = claim_all(http)
    child = submit(http, depends_on=[parent["id"]])
    got: dict[str, Any] = {}

    def park() -> None:
        with httpx.Client(base_url=str(http.base_url), headers=http.headers, timeout=60) as c:
            got["answer"] = c.post(
                f"{API}/jobs/claim", json={"executor_id": "wf-poller", "wait": 30}
            )

    thread = threading.Thread(target=park)
    thread.start()
    time.sleep(0.3)  # let it park
    finish(http, claimed)
    thread.join(timeout=40)
    answer = got["answer"]
    assert answer.status_code == 200 and answer.json()["id"] == child["id"]
    assert answer.elapsed.total_seconds() < 10  # far below the 30 s wait


WORKFLOW = {
    "name": "release",
    "jobs": [
        {"key": "build", "command": "true"},
        {"key": "test", "command": "true", "depends_on": ["build"]},
        {"key": "lint", "command": "true", "depends_on": ["build"]},
        {"key": "package", "command": "true", "depends_on": ["test", "lint"]},
    ],
}


def test_item15_workflow_submit_read_and_cancel(http: httpx.Client) -> None:
    claim_all(http)
    answer = http.post(f"{API}/workflows", json=WORKFLOW, headers={"Idempotency-Key": "wf-1"})
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert set(created["jobs"]) == {"build", "test", "lint", "package"}
    replay = http.post(f"{API}/workflows", json=WORKFLOW, headers={"Idempotency-Key": "wf-1"})
    assert replay.status_code == 201 and replay.json() == created
    shown = http.get(f"{API}/workflows/{created['id']}").json()
    assert shown["status"] == "pending"
    waits = {j["key"]: sorted(j["depends_on"]) for j in shown["jobs"]}
    assert waits == {"build": [], "test": ["build"], "lint": ["build"], "package": ["lint", "test"]}
    [build] = claim_all(http)
    assert build["id"] == created["jobs"]["build"]
    assert http.get(f"{API}/workflows/{created['id']}").json()["status"] == "running"
    listed = http.get(f"{API}/workflows").json()
    assert listed[0]["id"] == created["id"] and listed[0]["counts"]["running"] == 1
    cancelled = http.delete(f"{API}/workflows/{created['id']}").json()
    statuses = {j["key"]: j["status"] for j in cancelled["jobs"]}
    assert statuses == {
        "build": "running",  # asked to stop: its worker hears it at its next heartbeat
        "test": "cancelled",
        "lint": "cancelled",
        "package": "cancelled",
    }
    finish(http, build, ok=False)
    assert http.get(f"{API}/workflows/{created['id']}").json()["status"] == "failed"


def test_item15_workflow_cycles_and_unknown_keys_are_400s_naming_them(
    http: httpx.Client,
) -> None:
    cycle = {
        "name": "loop",
        "jobs": [
            {"key": "a", "command": "true", "depends_on": ["c"]},
            {"key": "b", "command": "true", "depends_on": ["a"]},
            {"key": "c", "command": "true", "depends_on": ["b"]},
        ],
    }
    body = assert_error(http.post(f"{API}/workflows", json=cycle), 400)
    assert "a -> c -> b -> a" in body["error"], body
    unknown = {"name": "x", "jobs": [{"key": "a", "command": "true", "depends_on": ["nope"]}]}
    body = assert_error(http.post(f"{API}/workflows", json=unknown), 400)
    assert "nope" in body["error"]
    twice = {"name": "x", "jobs": [{"key": "a", "command": "true"}] * 2}
    assert_error(http.post(f"{API}/workflows", json=twice), 400)
    assert_error(http.get(f"{API}/workflows/nope"), 404)
    assert http.get(f"{API}/workflows").json()[0]["name"] != "loop"  # nothing was stored


def test_item15_workflow_may_name_existing_jobs(http: httpx.Client, tmp_path: Path) -> None:
    claim_all(http)
    earlier = submit(http)
    doc = {
        "name": "after",
        "jobs": [{"key": "next", "command": "true", "depends_on": [earlier["id"]]}],
    }
    created = http.post(f"{API}/workflows", json=doc).json()
    shown = http.get(f"{API}/workflows/{created['id']}").json()
    assert shown["jobs"][0]["depends_on"] == [earlier["id"]]
    assert shown["jobs"][0]["blocked"] is True


def test_item15_dashboard_draws_the_graph_and_lists_dependencies(
    server: LiveServer, http: httpx.Client
) -> None:
    claim_all(http)
    created = http.post(f"{API}/workflows", json={**WORKFLOW, "name": "drawn"}).json()
    [build] = claim_all(http)
    finish(http, build)
    with closing(sign_in(server, *ADMIN)) as browser:
        page = browser.get(f"/workflows/{created['id']}")
        assert page.status_code == 200, page.text
        svg = page.text[page.text.index('<svg id="workflow-graph"') :]
        svg = svg[: svg.index("</svg>")]
        assert svg.count('class="edge"') == 4
        for key, state in (("build", "completed"), ("test", "pending"), ("package", "blocked")):
            assert f'data-key="{key}" data-status="{state}"' in svg, (key, svg)
        fragment = browser.get(f"/workflows/{created['id']}?fragment=graph").text
        assert "<svg" in fragment and "<html" not in fragment
        assert "drawn" in browser.get("/workflows").text
        job = browser.get(f"/jobs/{created['jobs']['test']}").text
        waits = job[job.index('id="waits-for"') : job.index('id="waited-on-by"')]
        waited = job[job.index('id="waited-on-by"') :]
        assert created["jobs"]["build"] in waits
        assert created["jobs"]["package"] in waited[: waited.index("</ul>")]
        assert browser.get("/workflows/nope").status_code == 404


def corral(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(CORRAL_URL=server.url, CORRAL_TOKEN=server.admin_token)
    ran = subprocess.run(
        [*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.returncode == 0, ran.stderr
    return ran


def test_item15_cli_submit_after_and_fetch_the_parents_artifacts(
    server: LiveServer, http: httpx.Client, tmp_path: Path
) -> None:
    claim_all(http)
    parent = submit(http, "make dist")
    [job] = claim_all(http)
    stored = http.post(
        f"{API}/jobs/{parent['id']}/artifacts",
        params={"path": "dist/app.tar", "executor_id": "wf-worker", "attempt": job["attempt"]},
        content=b"tarball",
    )
    assert stored.status_code == 201, stored.text
    child_id = corral(
        server, "submit", "--after", parent["id"], "--run-if", "always", "--", "echo", "hi"
    ).stdout.strip()
    shown = http.get(f"{API}/jobs/{child_id}").json()
    assert (shown["status"], shown["blocked"], shown["run_if"]) == ("pending", True, "always")
    finish(http, job, ok=False, result={"version": "1.2"})
    assert http.get(f"{API}/jobs/{child_id}").json()["blocked"] is False  # always: it runs
    listed = json.loads(corral(server, "workflow", "parents", child_id, "--json").stdout)
    assert [(p["id"], p["status"], p["result"]) for p in listed] == [
        (parent["id"], "failed", {"version": "1.2"})
    ]
    corral(server, "workflow", "parents", child_id, "--download", str(tmp_path))
    assert (tmp_path / parent["id"] / "dist" / "app.tar").read_bytes() == b"tarball"


def test_item15_last_dependency_on_one_replica_wakes_a_claimer_on_another(
    pg_server: PgServer, tmp_path: Path
) -> None:
    """Two replicas on one PostgreSQL: the parent completes through A, and a claim
    parked on B gets the dependant at once (the wake-up is relayed, not polled)."""
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    with (
        run_server(tmp_path / "a", database_url=dsn) as a,
        run_server(tmp_path / "b", database_url=dsn) as b,
        a.client() as on_a,
        httpx.Client(base_url=b.url, headers=on_a.headers, timeout=60) as on_b,
    ):
        parent = submit(on_a)
        [claimed] = claim_all(on_a)
        child = submit(on_a, depends_on=[parent["id"]])
        got: dict[str, Any] = {}

        def park() -> None:
            got["answer"] = on_b.post(f"{API}/jobs/claim", json={"executor_id": "b", "wait": 30})

        thread = threading.Thread(target=park)
        thread.start()
        time.sleep(0.3)  # let it park
        finish(on_a, claimed)
        thread.join(timeout=40)
        answer = got["answer"]
        assert answer.status_code == 200 and answer.json()["id"] == child["id"]
        assert answer.elapsed.total_seconds() < 10  # far below the 30 s wait
