"""Nothing per replica that a client can tell apart: two real ``corral server`` processes
on one PostgreSQL database share rate limits, job events, per-job wake-ups and the
dashboard's figures. Work goes through replica ``a``; what is seen is seen on ``b``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.pg_server import PgServer
from tests.processes import poll
from tests.replica_pair import Replica, replica_pair

# Two server processes start once for the module: several seconds on a busy machine.
pytestmark = pytest.mark.slow

API = "/api/v1"
ADMIN = ("root@example.com", "admin-password-for-replicas")
WORKER_LIMIT = 20  # per worker principal and hour, whichever replica counts it
AUTH_FAILURES = 6  # per client address and hour
PROMPT = 5.0  # seconds: an event must cross replicas well within this


class Pair:
    def __init__(self, a: Replica, b: Replica, admin: str) -> None:
        self.a, self.b, self.admin = a, b, admin

    def token(self, role: str) -> str:
        with self.a.client(self.admin) as http:
            answer = http.post(f"{API}/admin/tokens", json={"role": role, "name": f"t-{role}"})
            assert answer.status_code == 201, answer.text
            secret: str = answer.json()["token"]
            return secret


@pytest.fixture(scope="module")
def pair(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    dsn = asyncio.run(pg_server.new_database())
    env = {
        "CORRAL_WORKER_RATE_LIMIT": f"{WORKER_LIMIT}/hour",
        "CORRAL_AUTH_FAILURE_RATE_LIMIT": f"{AUTH_FAILURES}/hour",
    }
    first = {"CORRAL_ADMIN_EMAIL": ADMIN[0], "CORRAL_ADMIN_PASSWORD": ADMIN[1]}
    root = tmp_path_factory.mktemp("replicas")
    with replica_pair(root, dsn, env, first) as (a, b, admin):
        yield Pair(a, b, admin)


def clear_of_the_hour_edge() -> None:
    """An hour's window that ends mid-test would hand out a second budget."""
    left = 3600 - time.time() % 3600
    if left < 15:
        time.sleep(left + 0.5)


def run_job(pair: Pair, worker: str, executor_id: str, output: str = "hello\n") -> str:
    """Through ``a``: submit, claim, write a line of output, complete with exit code 3."""
    with pair.a.client(pair.admin) as admin:
        answer = admin.post(f"{API}/jobs", json={"command": "true", "labels": [executor_id]})
        assert answer.status_code == 201, answer.text
        job_id: str = answer.json()["id"]
    with pair.a.client(worker) as w:
        claim = {"executor_id": executor_id, "labels": [executor_id], "n": 1}
        claimed = w.post(f"{API}/jobs/claim", json=claim)
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()[0]["id"] == job_id
        lease = {"executor_id": executor_id, "attempt": claimed.json()[0]["attempt"]}
        body = {**lease, "stream": "stdout", "data": output}
        assert w.post(f"{API}/jobs/{job_id}/output", json=body).status_code == 200
        done = w.put(f"{API}/jobs/{job_id}/complete", json={**lease, "exit_code": 3})
        assert done.status_code == 200, done.text
    return job_id


# --- rate limits -----------------------------------------------------------------------------
def test_a_principal_gets_one_budget_across_replicas(pair: Pair) -> None:
    clear_of_the_hour_edge()
    worker = pair.token("worker")
    beat = {"executor_id": "w-rate", "attempt": 1}
    answers: list[httpx.Response] = []
    with pair.a.client(worker) as a, pair.b.client(worker) as b:
        for i in range(WORKER_LIMIT + 4):
            answers.append((a if i % 2 else b).put(f"{API}/jobs/nothing/heartbeat", json=beat))
    statuses = [answer.status_code for answer in answers]
    # The limit once between the two (one replica each used to admit it in full):
    assert statuses == [404] * WORKER_LIMIT + [429] * 4, statuses
    remaining = [int(answer.headers["x-ratelimit-remaining"]) for answer in answers]
    assert remaining[0] == WORKER_LIMIT - 1 and remaining[-1] == 0
    assert answers[-1].json()["error"] == "Rate limit exceeded"
    assert int(answers[-1].headers["retry-after"]) >= 1


def test_an_address_that_spent_its_failures_is_refused_by_every_replica(pair: Pair) -> None:
    clear_of_the_hour_edge()
    sprayer = {"X-Forwarded-For": "198.51.100.7"}  # uvicorn trusts it from loopback
    with (
        pair.a.client("crl_not-a-token", **sprayer) as bad_on_a,
        pair.b.client("crl_not-a-token", **sprayer) as bad_on_b,
        pair.b.client(pair.admin, **sprayer) as good_on_b,
        pair.a.client(pair.admin, **sprayer) as good_on_a,
    ):
        assert good_on_b.get(f"{API}/jobs").status_code == 200  # b has met the address
        statuses = [bad_on_a.get(f"{API}/jobs").status_code for _ in range(AUTH_FAILURES + 1)]
        assert statuses == [401] * AUTH_FAILURES + [429], statuses
        # b counted none of these, yet refuses the address within milliseconds (a
        # announced the spent window; b would otherwise read it only 30 s later), good
        # token included, so a sprayer cannot tell good tokens from bad.
        refused = poll(lambda: good_on_b.get(f"{API}/jobs").status_code == 429, 1.0, "b")
        assert refused
        assert bad_on_b.get(f"{API}/jobs").status_code == 429
        assert good_on_a.get(f"{API}/jobs").status_code == 429


# --- job events ------------------------------------------------------------------------------
def test_a_watcher_on_one_replica_sees_a_job_that_went_through_the_other(pair: Pair) -> None:
    worker = pair.token("worker")
    url = pair.b.url.replace("http://", "ws://") + f"/api/jobs/stream?token={pair.admin}"
    with connect(url, open_timeout=10) as ws:
        time.sleep(0.2)  # subscribed on b before anything happens on a
        job_id = run_job(pair, worker, "w-ws")
        events = [json.loads(ws.recv(timeout=PROMPT)) for _ in range(3)]
    mine = [e for e in events if e["jobId"] == job_id]
    assert [e["type"] for e in mine] == ["job.started", "job.output", "job.completed"], events
    started, output, completed = mine
    assert started["workerId"] == "w-ws"
    assert (output["stream"], output["data"]) == ("stdout", "hello\n")
    assert (completed["status"], completed["exitCode"]) == ("completed", 3)


# --- per-job wake-ups ------------------------------------------------------------------------
def test_output_followed_on_one_replica_arrives_as_it_is_written_on_the_other(
    pair: Pair,
) -> None:
    worker = pair.token("worker")
    with pair.a.client(pair.admin) as admin:
        job_id = admin.post(f"{API}/jobs", json={"command": "true", "labels": ["w-f"]}).json()["id"]
    heard: list[tuple[float, str]] = []
    opened = threading.Event()

    def follow_on_b() -> None:
        with (
            pair.b.client(pair.admin) as http,
            http.stream("GET", f"{API}/jobs/{job_id}/output/follow") as stream,
        ):
            opened.set()
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event in ("output", "end"):
                    heard.append((time.monotonic(), event))
                    if event == "end":
                        return

    follower = threading.Thread(target=follow_on_b, daemon=True)
    follower.start()
    assert opened.wait(10)
    time.sleep(0.3)  # parked on the job's signal, a 15 s keep-alive away from a re-read
    with pair.a.client(worker) as w:
        claim = {"executor_id": "w-f", "labels": ["w-f"], "n": 1}
        lease = {
            "executor_id": "w-f",
            "attempt": w.post(f"{API}/jobs/claim", json=claim).json()[0]["attempt"],
        }
        written = time.monotonic()
        body = {**lease, "stream": "stdout", "data": "line\n"}
        assert w.post(f"{API}/jobs/{job_id}/output", json=body).status_code == 200
        poll(lambda: heard, PROMPT, "the output to reach the follower on b")
        assert w.put(f"{API}/jobs/{job_id}/complete", json={**lease, "exit_code": 0}).is_success
    follower.join(PROMPT)
    assert [event for _, event in heard] == ["output", "end"]
    assert heard[0][0] - written < PROMPT


# --- the dashboard's figures ------------------------------------------------------------------
@contextmanager
def signed_in(replica: Replica) -> Iterator[httpx.Client]:
    """A browser's session on one replica (the form's CSRF token, then the cookie)."""
    with httpx.Client(base_url=replica.url, follow_redirects=False, timeout=30) as client:
        csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert csrf is not None
        form = {"email": ADMIN[0], "password": ADMIN[1], "csrf": csrf[1], "next": "/"}
        assert client.post("/login", data=form).status_code == 303
        yield client


def figures(browser: httpx.Client) -> dict[str, Any]:
    html = browser.get("/queues").text
    counts = re.search(r"Last \d+ min <span class=\"muted\">\((\d+) jobs\)", html)
    total = re.search(r"All time <span class=\"muted\">\((\d+) jobs\)", html)
    waits = re.findall(r'<tr data-percentile="(p\d+)"><th scope="row">p\d+</th>(.*?)</tr>', html)
    started = [
        float(x)
        for x in re.findall(r'<td class="num">([\d.]+)</td><td class="num">[\d.]+</td></tr>', html)
    ]
    assert counts is not None and total is not None, html
    return {"recent": int(counts[1]), "total": int(total[1]), "waits": waits, "started": started}


def test_the_dashboards_figures_are_the_same_on_every_replica(pair: Pair) -> None:
    worker = pair.token("worker")
    with signed_in(pair.a) as on_a, signed_in(pair.b) as on_b:
        before = figures(on_b)["total"]
        for i in range(3):
            run_job(pair, worker, f"w-dash-{i}")
        # a adds its counts every second; b never served these jobs
        seen_on_b = poll(
            lambda: (f := figures(on_b))["total"] >= before + 3 and f, PROMPT, "b's figures"
        )
        seen_on_a = figures(on_a)
    assert seen_on_b["recent"] == seen_on_a["recent"] >= 3
    assert seen_on_b["total"] == seen_on_a["total"]
    assert seen_on_b["waits"] == seen_on_a["waits"] and "—" not in str(seen_on_b["waits"])
    assert sum(seen_on_b["started"]) > 0  # the claims through a, as rates on b
