"""Concurrency keys and fair share over real HTTP: the submit fields and their refusals,
``pending_reason``, the wake-up a freed slot gives (on one replica and across two),
the CLI's options and the dashboard's Queues page."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_dashboard_fleet import add_viewer, page, sign_in, start
from tests.integration.test_native_api import API, assert_error, claim, details
from tests.live import LiveServer, run_server
from tests.pg_server import PgServer

KEY = "deploy-prod"


def keyed(limit: Any = None, **extra: Any) -> dict[str, Any]:
    body = {"command": "true", "concurrency_key": KEY, **extra}
    return body if limit is None else {**body, "concurrency_limit": limit}


def submit(http: httpx.Client, body: dict[str, Any]) -> str:
    answer = http.post(f"{API}/jobs", json=body)
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def claim_many(http: httpx.Client, executor: str = "worker-1", **extra: Any) -> list[Any]:
    """``POST /jobs/claim`` with ``n``: a list of jobs (empty: none)."""
    answer = claim(http, executor, **extra)
    assert answer.status_code in (200, 204), answer.text
    return list(answer.json()) if answer.status_code == 200 else []


def complete(http: httpx.Client, job: dict[str, Any], executor: str = "worker-1") -> None:
    done = {"executor_id": executor, "attempt": job["attempt"], "exit_code": 0}
    answer = http.put(f"{API}/jobs/{job['id']}/complete", json=done)
    assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with start(tmp_path_factory.mktemp("flow") / "data") as live:
        add_viewer(live)
        yield live


def test_held_jobs_are_pending_with_a_reason_naming_their_key(server: LiveServer) -> None:
    with server.client() as http:
        first, second = submit(http, keyed()), submit(http, keyed())
        shown = details(http, second)
        assert (shown["status"], shown["held"]) == ("pending", True)
        assert (shown["concurrency_key"], shown["concurrency_limit"]) == (KEY, 1)
        assert (
            shown["pending_reason"]
            == f"concurrency key {KEY} is at its limit of 1 (0 running, 1 about to start)"
        )
        listed = {j["id"]: j for j in http.get(f"{API}/jobs", params={"status": "pending"}).json()}
        assert (
            listed[second]["held"] and listed[second]["pending_reason"] == shown["pending_reason"]
        )
        assert not listed[first]["held"]  # admitted: it waits for a worker, not its key
        assert listed[first]["pending_reason"] == "no worker is online"
        running = claim_many(http, n=10)
        assert [j["id"] for j in running] == [first]
        reason = details(http, second)["pending_reason"]
        assert reason == f"concurrency key {KEY} is at its limit of 1 (1 running)"
        complete(http, running[0])
        shown = details(http, second)
        assert (shown["held"], shown["pending_reason"]) == (False, None)
        [started] = claim_many(http, n=10)
        assert started["id"] == second
        complete(http, started)


@pytest.mark.parametrize(
    "body",
    [
        keyed(limit=0),
        keyed(limit=1001),
        keyed(limit="two"),
        {"command": "true", "concurrency_limit": 2},
        {"command": "true", "concurrency_key": ""},
        {"command": "true", "concurrency_key": "   "},
        {"command": "true", "concurrency_key": "a\nb"},
        {"command": "true", "concurrency_key": "k" * 201},
        {"command": "true", "concurrency_key": 7},
    ],
)
def test_bad_concurrency_fields_are_400_naming_the_field(
    server: LiveServer, body: dict[str, Any]
) -> None:
    with server.client() as http:
        error = assert_error(http.post(f"{API}/jobs", json=body), 400)
        assert "concurrency" in json.dumps(error)
        assert_error(http.post(f"{API}/jobs/bulk", json=[body]), 400)


def test_a_freed_slot_wakes_a_waiting_claim(server: LiveServer) -> None:
    with server.client() as http:
        key = {"concurrency_key": "wake-test"}
        first, second = submit(http, keyed(**key)), submit(http, keyed(**key))
        [running] = claim_many(http, "w-wake", n=10)
        assert running["id"] == first
        got: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: got.append(claim(http, "w-wake", wait=30, n=1)), daemon=True
        )
        started = time.monotonic()
        waiting.start()
        time.sleep(0.5)  # parked: the key's one slot is taken
        assert not got
        complete(http, running, "w-wake")
        waiting.join(25)
        assert got and got[0].status_code == 200, got
        assert [j["id"] for j in got[0].json()] == [second]
        assert time.monotonic() - started < 10  # woken by the finish, not its 30 s wait


def test_the_queues_page_shows_the_keys_holding_jobs_back(server: LiveServer) -> None:
    with server.client() as http:
        for _ in range(3):
            submit(http, keyed(limit=2, concurrency_key="thumbnails"))
    with sign_in(server) as browser:
        html = page(browser, "/queues?fragment=charts")
    assert 'id="held-keys"' in html
    row = html.split('<tr data-key="thumbnails">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num" data-count="held">1</td>' in row
    assert '<td class="num" data-count="queued">2</td>' in row


def test_corral_submit_takes_a_concurrency_key_and_limit(server: LiveServer) -> None:
    env = {**os.environ, "CORRAL_URL": server.url, "CORRAL_TOKEN": server.admin_token}
    args = ["submit", "--concurrency-key", "cli-key", "--concurrency-limit", "3", "--json", "true"]
    done = subprocess.run(
        [sys.executable, "-m", "corral.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with server.client() as http:
        shown = details(http, json.loads(done.stdout)["id"])
    assert (shown["concurrency_key"], shown["concurrency_limit"]) == ("cli-key", 3)


def test_a_project_task_counts_as_the_project_creator(tmp_path: Path) -> None:
    """Fair share: tasks another caller adds to the admin's project share the admin's
    turns, so a third owner's job goes after the first of them, not after the
    first of each."""
    with run_server(tmp_path / "data") as live, live.client() as admin:
        project = admin.post("/api/projects", json={"name": "share"})
        assert project.status_code == 201, project.text
        project_id = project.json()["data"]["id"]
        with (
            live.client(live.token("submitter")) as tasks,
            live.client(live.token("submitter")) as other,
        ):
            for i in range(3):
                submit(tasks, {"command": f"echo t{i}", "project_id": project_id})
            for i in range(3):
                submit(admin, {"command": f"echo a{i}"})
            late = submit(other, {"command": "echo late"})
        order = [j["id"] for j in claim_many(admin, n=10)]
    assert order.index(late) == 1  # one owner's six jobs, then the other owner's one


def test_a_freed_slot_wakes_a_claim_waiting_on_another_replica(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    with (
        run_server(tmp_path / "a", database_url=dsn) as a,
        run_server(tmp_path / "b", database_url=dsn) as b,
        httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {a.admin_token}"}) as on_a,
    ):
        first, second = submit(on_a, keyed()), submit(on_a, keyed())
        [running] = claim_many(on_a, "w-on-a", n=1)
        assert running["id"] == first
        got: dict[str, Any] = {}

        def long_poll_on_b() -> None:
            with httpx.Client(base_url=b.url, timeout=40) as http:
                answer = http.post(
                    f"{API}/jobs/claim",
                    json={"executor_id": "w-on-b", "n": 1, "wait": 30},
                    headers={"Authorization": f"Bearer {a.admin_token}"},
                )
                got.update(status=answer.status_code, body=answer.json(), at=time.monotonic())

        poller = threading.Thread(target=long_poll_on_b)
        poller.start()
        time.sleep(0.5)
        finished_at = time.monotonic()
        complete(on_a, running, "w-on-a")
        poller.join(40)
    assert got["status"] == 200 and [j["id"] for j in got["body"]] == [second]
    assert got["at"] - finished_at < 5, got  # the NOTIFY, not the 30 s wait
