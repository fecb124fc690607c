"""A real `corral worker` delivering through faults: 5xx, dropped connections, a dead server.

The dispatcher is a real `corral server` subprocess; the worker is a real subprocess
that reaches it through ``tests/faultproxy.py``, a proxy in this test process that
answers 503, delays, or drops connections before or after forwarding. Jobs are
submitted and checked on the server directly, through the API.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.faultproxy import DROP, DROP_AFTER, PASS, UNAVAILABLE, Call, Countdown, FaultProxy
from tests.processes import (
    CORRAL,
    STARTUP,
    clean_env,
    free_port,
    poll,
    start_worker,
    stop_all,
    worker_token,
)

TERMINAL = ("completed", "failed", "cancelled")


@dataclass
class Server:
    """A real `corral server` that a test may kill and start again on its port and data."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    admin: str = ""
    worker_token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with (self.root / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *CORRAL,
                    "server",
                    "--data-dir",
                    str(self.root / "data"),
                    "--port",
                    str(self.port),
                ],
                env=clean_env(CORRAL_LEASE_GRACE="0", CORRAL_REAPER_INTERVAL="0.5"),
                stdout=log,
                stderr=log,
            )
        poll(self._healthy, STARTUP, "the server")
        self.admin = (self.root / "data" / "admin-token").read_text().strip()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        try:
            return httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return (self.root / "server.log").read_text()

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def submit(self, *bodies: dict[str, Any]) -> list[str]:
        with self.http() as http:
            jobs = http.post("/jobs/bulk", json=list(bodies)).raise_for_status().json()
        return [j["id"] for j in jobs]

    def jobs(self, ids: list[str]) -> list[dict[str, Any]]:
        with self.http() as http:
            return [http.get(f"/jobs/{i}").raise_for_status().json() for i in ids]

    def wait_done(self, ids: list[str], seconds: float = 30) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            jobs = self.jobs(ids)
            return jobs if all(j["status"] in TERMINAL for j in jobs) else None

        result: list[dict[str, Any]] = poll(done, seconds, f"{len(ids)} jobs to end")
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("faults"))
    server.start()
    server.worker_token = worker_token(server.root / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workers(server: Server) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop_all(started, 20)


def worker(
    server: Server, url: str, name: str, started: list[subprocess.Popen[bytes]], *args: str
) -> subprocess.Popen[bytes]:
    proc = start_worker(
        url, server.worker_token, server.root, name, f"{name}.log", "--claim-wait", "2", *args
    )
    started.append(proc)
    return proc


def worker_log(server: Server, name: str) -> str:
    return (server.root / f"{name}.log").read_text()


def reported_ids(call: Call) -> list[str]:
    return [r["job_id"] for r in orjson.loads(call.body)]


class Faults:
    """A rule: the first few results and heartbeats answer 503, some calls are dropped."""

    def __init__(self, unavailable: int = 3, drop_every: int = 0) -> None:
        self.results = Countdown(unavailable)
        self.beats = Countdown(unavailable)
        self.drop_every = drop_every
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> str | float:
        if call.path.endswith("/jobs/results") and self.results.take():
            return UNAVAILABLE
        if call.path.endswith("/heartbeat") and self.beats.take():
            return UNAVAILABLE
        if self.drop_every and call.path.endswith(("/jobs/results", "/output", "/heartbeat")):
            with self._lock:
                self.count += 1
                if self.count % self.drop_every == 0:
                    # Alternate: the call never arrives / it arrives but its answer is lost.
                    return DROP if (self.count // self.drop_every) % 2 else DROP_AFTER
        return PASS


def test_item2_outcomes_resent_after_503(server: Server, workers: list[Any]) -> None:
    """503 on the first results (a restarting load balancer), then one dropped call: the
    outcome is kept and resent, and the job ends completed on its first attempt."""
    faults = Faults(unavailable=3)
    with FaultProxy(server.url, faults) as proxy:
        worker(server, proxy.url, "w-item2", workers, "--concurrency", "2")
        [job_id] = server.submit({"command": "echo hi", "lease_seconds": 60})
        [job] = server.wait_done([job_id], 20)
        sent = proxy.seen("/jobs/results")
    assert (job["status"], job["attempt"], job["stdout"]) == ("completed", 1, "hi\n")
    assert len(job["attempts"]) == 1
    assert [c.status for c in sent[:4]] == [503, 503, 503, 200]
    assert all(reported_ids(c) == [job_id] for c in sent)


def test_item2_leases_renewed_while_outcomes_wait(server: Server, workers: list[Any]) -> None:
    """Results answer 503 for longer than the job's 3 s lease: heartbeats keep the
    lease, so the job is not reaped and run again; its one outcome lands at last.

    The outage is timed from the first results call, not from the test's start: a
    worker slow to start on a loaded machine left too little of it to retry in."""
    first_results: list[float] = []

    def results_down_for_a_while(call: Call) -> str | float:
        if not call.path.endswith("/jobs/results"):
            return PASS
        if not first_results:
            first_results.append(time.monotonic())
        return UNAVAILABLE if time.monotonic() - first_results[0] < 6 else PASS

    with FaultProxy(server.url, results_down_for_a_while) as proxy:
        worker(server, proxy.url, "w-item2-lease", workers, "--concurrency", "1")
        [job_id] = server.submit({"command": "echo once", "lease_seconds": 3})
        [job] = server.wait_done([job_id], 30)
        refused = [c for c in proxy.seen("/jobs/results") if c.status == 503]
    assert (job["status"], job["attempt"], job["stdout"]) == ("completed", 1, "once\n")
    assert len(job["attempts"]) == 1
    assert len(refused) >= 3


@pytest.mark.slow
def test_item4_slow_heartbeats_still_renew_the_lease(server: Server, workers: list[Any]) -> None:
    """Every heartbeat is answered 2.5 s late, well within an 8 s lease: the lease is
    renewed, so a job running longer than its lease is not killed (a fixed 2 s timeout
    gave up on every heartbeat and lost the lease)."""

    def slow_beats(call: Call) -> str | float:
        return 2.5 if call.path.endswith("/heartbeat") else PASS

    with FaultProxy(server.url, slow_beats) as proxy:
        worker(server, proxy.url, "w-item4-slow", workers, "--concurrency", "1")
        [job_id] = server.submit({"command": "sleep 9.5; echo done", "lease_seconds": 8})
        [job] = server.wait_done([job_id], 25)
    assert (job["status"], job["attempt"], job["stdout"]) == ("completed", 1, "done\n")
    assert "lease_expired" not in worker_log(server, "w-item4-slow")


def test_item4_heartbeats_have_their_own_connections(server: Server, workers: list[Any]) -> None:
    """Heartbeats never wait in the pool that output and transfers use: no connection
    that carried a heartbeat ever carried anything else."""
    with FaultProxy(server.url, lambda call: PASS) as proxy:
        worker(server, proxy.url, "w-item4-pool", workers, "--concurrency", "2")
        script = "for i in 1 2 3 4 5 6; do echo line $i; sleep 0.4; done"
        ids = server.submit(*[{"command": script, "lease_seconds": 3}] * 2)
        jobs = server.wait_done(ids, 20)
        calls = list(proxy.calls)
    assert {j["status"] for j in jobs} == {"completed"}
    beats = {c.connection for c in calls if c.path.endswith("/heartbeat")}
    others = {c.connection for c in calls if not c.path.endswith("/heartbeat")}
    assert len([c for c in calls if c.path.endswith("/heartbeat")]) >= 2
    assert any(c.path.endswith("/output") for c in calls)
    assert beats.isdisjoint(others)


@pytest.mark.slow
def test_item6_output_printed_while_the_server_is_down_is_kept(
    server: Server, workers: list[Any]
) -> None:
    """The job prints everything and exits while the dispatcher is killed; after it
    comes back (same port, same data) the job is completed with its whole stdout."""
    worker(server, server.url, "w-item6", workers, "--concurrency", "1")
    script = "echo before; sleep 2; seq 1 2000 | sed 's/^/line /'; echo after"
    [job_id] = server.submit({"command": script, "lease_seconds": 60})

    def printed_before() -> bool:
        with server.http() as http:
            answer = http.get(f"/jobs/{job_id}/output").json()
        return bool(answer["data"] == "before\n")

    poll(printed_before, 15, "the job's first line")
    server.kill()
    try:
        poll(lambda: '"job_finished"' in worker_log(server, "w-item6"), 15, "the job to end")
    finally:
        server.start()
    [job] = server.wait_done([job_id], 40)
    expected = "before\n" + "".join(f"line {n}\n" for n in range(1, 2001)) + "after\n"
    assert (job["status"], job["exit_code"], job["attempt"]) == ("completed", 0, 1)
    assert job["stdout"] == expected
    assert job["stdout_truncated"] is False


def test_worker_behind_faults_completes_each_job_exactly_once(
    server: Server, workers: list[Any]
) -> None:
    """The acceptance test: 503 on the first results and heartbeats, and every fifth
    results/output/heartbeat call dropped (before it arrives, or after it took effect):
    every job completes exactly once, with its output whole and said once."""
    faults = Faults(unavailable=3, drop_every=5)
    script = 'for i in 1 2 3; do echo "$CORRAL_JOB_ID $i"; sleep 0.15; done'
    with FaultProxy(server.url, faults) as proxy:
        worker(server, proxy.url, "w-faults", workers, "--concurrency", "4")
        ids = server.submit(*[{"command": script, "lease_seconds": 30}] * 40)
        jobs = server.wait_done(ids, 90)
        calls = list(proxy.calls)
    for job in jobs:
        expected = "".join(f"{job['id']} {i}\n" for i in (1, 2, 3))
        assert (job["status"], job["attempt"], len(job["attempts"])) == ("completed", 1, 1)
        assert (job["stdout"], job["stdout_truncated"]) == (expected, False)
    accepted: dict[str, int] = {}
    for call in calls:
        if call.path.endswith("/jobs/results") and call.answer:
            for answer in orjson.loads(call.answer):
                if answer["ok"]:
                    accepted[answer["job_id"]] = accepted.get(answer["job_id"], 0) + 1
    assert accepted == dict.fromkeys(ids, 1)  # each outcome recorded once, none lost
    actions = {(c.path.rsplit("/", 1)[-1], c.action) for c in calls}
    assert {("results", UNAVAILABLE), ("heartbeat", UNAVAILABLE)} <= actions
    assert {("output", DROP), ("output", DROP_AFTER)} <= actions
