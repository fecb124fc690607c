"""PostgreSQL restarts under load, and nothing answered 2xx is lost.

A PostgreSQL of this test's own (``durable``: a commit is written before it is
acknowledged, as in production), two ``corral server`` replicas on it, a real
``corral worker`` given both URLs, and a careful client submitting jobs all along
(an ``Idempotency-Key`` each, the same key again after a connection error or a 5xx).
PostgreSQL is then stopped as a crash would stop it (``pg_ctl -m immediate``) and
started again. While it is away, every face of both replicas answers 503 in its own
error shape with ``Retry-After``, never a 500; once it is back, both replicas serve
again by themselves, a long-poll parked on one replica before the outage is woken by
a job submitted through the other, and every job that was answered 201 ran exactly
once.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_server import PgServer
from tests.processes import HOST_VISIBLE, poll, start_worker
from tests.replicas import Replica, admin_token, start_replicas

pytestmark = [pytest.mark.slow, pytest.mark.fault]

OUTAGE = 2.0  # seconds PostgreSQL stays down once both replicas have noticed


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[PgServer, str]]:
    """A PostgreSQL of this test's own: restarting the shared one would upset the others."""
    server = PgServer(durable=True)
    server.start()
    try:
        yield server, asyncio.run(server.new_database(migrated=False))
    finally:
        server.stop()


@dataclass
class CarefulClient:
    """Submits jobs until told to stop, as the deployment guide tells clients to: each with
    its own ``Idempotency-Key``, sent again with the same key (to the other replica) after
    a connection error or a 5xx, until it is answered 201."""

    replicas: list[Replica]
    token: str
    job: dict[str, Any]
    acked: list[str] = field(default_factory=list)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        turns = itertools.cycle(self.replicas)
        with httpx.Client(headers=headers, timeout=10) as http:
            while not self.stop.is_set():
                key = str(uuid.uuid4())
                while True:  # one job: the same key until it is answered
                    url = f"{next(turns).url}/api/v1/jobs"
                    try:
                        answer = http.post(url, json=self.job, headers={"Idempotency-Key": key})
                    except httpx.TransportError:
                        self.statuses[0] += 1
                        time.sleep(0.1)
                        continue
                    self.statuses[answer.status_code] += 1
                    if answer.status_code == 201:
                        self.acked.append(answer.json()["id"])
                        break
                    assert answer.status_code >= 500, answer.text  # anything else is a bug
                    time.sleep(min(float(answer.headers.get("retry-after", "0.2")), 0.5))
                time.sleep(0.03)


# Each face's requests, and how its 503 body looks. The dashboard page is HTML.
def _native(body: Any) -> bool:
    return set(body) == {"error", "context"} and body["context"]["retry_after"] == 2


def _cmd(body: Any) -> bool:
    return body["code"] == "SERVICE_UNAVAILABLE" and set(body) == {
        "error",
        "message",
        "details",
        "code",
    }


def _octaskly(body: Any) -> bool:
    return body["status"] == 503 and body["error"] == "Service unavailable" and "timestamp" in body


def _taskdriver(body: Any) -> bool:
    return body["success"] is False and {"error", "timestamp", "correlationId"} <= set(body)


def _health(body: Any) -> bool:
    return bool(body) and body == {
        "status": "unhealthy",
        "database": "disconnected",
        "error": "the database is unavailable; try again shortly",
    }


def _both_health_shapes(body: Any) -> bool:
    return body["status"] == "unhealthy" and body["data"]["storage"]["healthy"] is False


FACES: list[tuple[str, str, dict[str, Any] | None, Callable[[Any], bool] | None]] = [
    ("GET", "/api/v1/jobs", None, _native),
    ("POST", "/api/v1/jobs", {"command": "true"}, _native),
    ("POST", "/api/v1/jobs/claim", {"executor_id": "probe", "n": 1}, _native),
    ("POST", "/api/jobs/submit", {"command": "true"}, _cmd),
    ("GET", "/api/v1/tasks", None, _octaskly),
    ("POST", "/api/v1/tasks", {"command": "true"}, _octaskly),
    ("GET", "/api/projects", None, _taskdriver),
    ("GET", "/api/v1/health", None, _health),
    ("GET", "/health", None, _both_health_shapes),
    ("GET", "/", None, None),  # the dashboard, signed in: an HTML page
]


def _probe(
    replica: Replica, token: str, reads_only: bool = False
) -> list[tuple[str, httpx.Response]]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    page = {"Accept": "text/html"}
    answers = []
    with httpx.Client(base_url=replica.url, timeout=10, cookies={"auth_token": token}) as http:
        for method, path, body, _ in FACES:
            if reads_only and method != "GET":
                continue
            sent = page if path == "/" else headers
            answers.append(
                (f"{method} {path}", http.request(method, path, json=body, headers=sent))
            )
    return answers


def _listens(replica: Replica) -> bool:
    return "listen_restored" in replica.tail(200_000)


def _park_a_claim(replica: Replica, token: str, got: dict[str, Any]) -> threading.Thread:
    """A long-poll claim for the one job labelled ``probe`` (the others need ``main``)."""

    def claim() -> None:
        body = {"executor_id": "probe", "n": 1, "wait": 40, "labels": ["probe"]}
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(
            f"{replica.url}/api/v1/jobs/claim", json=body, headers=headers, timeout=60
        )
        got["status"], got["body"], got["at"] = answer.status_code, answer.json(), time.monotonic()

    thread = threading.Thread(target=claim, daemon=True)
    thread.start()
    return thread


def test_replicas_answer_503_while_postgresql_restarts_and_lose_nothing_answered(
    database: tuple[PgServer, str], tmp_path: Path
) -> None:
    pg, dsn = database
    a, b = replicas = start_replicas(tmp_path, dsn, "a", "b")
    worker: subprocess.Popen[bytes] | None = None
    try:
        token = admin_token(replicas)
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"}) as http:
            minted = http.post("/api/v1/admin/tokens", json={"role": "worker", "name": "w"})
            worker_token = minted.raise_for_status().json()["token"]
        for face, answer in _probe(a, token, reads_only=True):  # the token and cookie work
            assert answer.status_code < 400, (face, answer.status_code, answer.text)
        ledger = tmp_path / "ledger"
        worker = start_worker(
            f"{a.url},{b.url}", worker_token, tmp_path, "w", "worker.log", *HOST_VISIBLE,
            "--claim-wait", "2", "--concurrency", "4", "--labels", "main",
        )  # fmt: skip
        command = f'echo "$CORRAL_JOB_ID $CORRAL_ATTEMPT" >> {ledger}'
        client = CarefulClient(replicas, token, {"command": command, "labels": ["main"]})
        submitter = threading.Thread(target=client.run, daemon=True)
        submitter.start()
        parked: dict[str, Any] = {}
        claimer = _park_a_claim(b, worker_token, parked)
        poll(lambda: len(client.acked) >= 20, 30, "jobs to flow before the outage")

        # --- PostgreSQL goes away ----------------------------------------------------
        pg.halt("immediate")
        down_at = time.monotonic()
        poll(lambda: a.health() == b.health() == 503, 15, "both replicas to say it is down")
        noticed = time.monotonic() - down_at
        for replica in replicas:
            for face, answer in _probe(replica, token):
                checker = next(c for m, p, _, c in FACES if f"{m} {p}" == face)
                assert answer.status_code == 503, (replica.name, face, answer.text)
                assert answer.headers["retry-after"] == "2", (replica.name, face)
                if checker is not None:
                    assert checker(answer.json()), (replica.name, face, answer.text)
                else:
                    assert answer.headers["content-type"].startswith("text/html")
        time.sleep(max(0.0, OUTAGE - (time.monotonic() - down_at)))

        # --- and comes back ----------------------------------------------------------
        pg.start_again()
        back_at = time.monotonic()
        poll(lambda: a.health() == b.health() == 200, 30, "both replicas to serve again")
        recovered = time.monotonic() - back_at
        acked_then = len(client.acked)
        poll(lambda: len(client.acked) > acked_then + 10, 30, "submissions to flow again")
        for replica in replicas:  # every LISTEN connection is back before the wake-up check
            poll(partial(_listens, replica), 30, "LISTEN again")
        with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"}) as http:
            sent = time.monotonic()
            probe = {"command": "true", "labels": ["probe"]}
            probe_id = http.post("/api/v1/jobs", json=probe).raise_for_status().json()["id"]
        claimer.join(30)
        assert parked.get("status") == 200, parked  # parked on B before the outage, woken by A
        assert parked["body"][0]["id"] == probe_id and parked["at"] - sent < 5

        client.stop.set()
        submitter.join(30)
        acked = set(client.acked)

        def all_ran() -> bool:
            text = ledger.read_text() if ledger.exists() else ""  # no job has run yet
            ran = {line.split()[0] for line in text.splitlines()}
            return acked <= ran

        poll(all_ran, 60, "every acknowledged job to run")
        lines = ledger.read_text().splitlines()
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for replica in replicas:
            replica.kill()

    ran = collections.Counter(line.split()[0] for line in lines)
    assert set(ran) == acked  # none missing, none the client was not told of
    assert max(ran.values()) == 1, [j for j, n in ran.items() if n > 1]  # none twice
    assert 500 not in client.statuses, client.statuses
    for replica in replicas:
        log = replica.tail(2_000_000)
        assert "Traceback" not in log, log[log.index("Traceback") - 2000 :][:6000]
        assert "database_unreachable" in log and "database_reachable" in log
    print(  # noqa: T201 - the figures, shown with -s
        f"\n{len(acked)} jobs acknowledged, each ran once; client saw {dict(client.statuses)}; "
        f"both replicas said 503 {noticed:.2f} s after PostgreSQL died and served "
        f"{recovered:.2f} s after it was back"
    )
