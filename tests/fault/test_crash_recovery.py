"""The fault suite: a few hundred jobs run while the server and the workers are killed
with SIGKILL and frozen with SIGSTOP, on both stores.

What must hold at the end, for every job the server acknowledged:
- it ended ``completed``, exactly once (one completed attempt, and it is the last one);
- its stored output is what its *last* attempt printed (every line names the attempt
  that printed it, so output or a result from a stale attempt shows up as a mismatch);
- that attempt really ran (the job appended its id and attempt to a ledger file).

Everything is real: ``corral server`` and ``corral worker`` processes, a real PostgreSQL
for the second store, real signals. Leases are short (4 s) so that lost leases are
reaped within the test's time.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pg_server import PgServer
from tests.processes import CORRAL, HOST_VISIBLE, STARTUP, clean_env, free_port, poll, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.fault]

JOBS = 300
LEASE_SECONDS = 4.0
# Each line names the job and the attempt that printed it; the ledger line is written
# last, so a ledger entry means the attempt ran to its end.
COMMAND = (
    'echo "start $CORRAL_JOB_ID $CORRAL_ATTEMPT"; sleep 0.3; '
    'echo "$CORRAL_JOB_ID $CORRAL_ATTEMPT" >> {ledger}; '
    'echo "done $CORRAL_JOB_ID $CORRAL_ATTEMPT"'
)


@dataclass
class Fleet:
    """One ``corral server`` on a fixed port (so it can be restarted in place) and its workers."""

    root: Path
    port: int
    server_args: list[str]
    server: subprocess.Popen[bytes] | None = None
    admin: str = ""
    worker_token: str = ""
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def start_server(self) -> None:
        with (self.root / "server.log").open("ab") as log:
            self.server = subprocess.Popen(
                [*CORRAL, "server", "--port", str(self.port), *self.server_args],
                env=clean_env(CORRAL_REAPER_INTERVAL="0.5", CORRAL_LEASE_GRACE="2"),
                stdout=log,
                stderr=log,
            )
        poll(self._healthy, STARTUP, "the server to answer")

    def _healthy(self) -> bool:
        assert self.server is not None
        assert self.server.poll() is None, (self.root / "server.log").read_text()[-4000:]
        try:
            return httpx.get(self.url + "/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start_worker(self, name: str) -> None:
        self.workers[name] = start_worker(
            self.url,
            self.worker_token,
            self.root,
            name,
            f"{name}.log",
            *HOST_VISIBLE,  # every job appends to a ledger under pytest's tmp dir
            "--claim-wait",
            "2",
            "--concurrency",
            "4",
            "--grace",
            "1",
        )

    def stop(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(10)
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait(10)


@pytest.fixture(params=["sqlite", "postgres"])
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "--log-level", "warning"]
    if request.param == "postgres":
        pg: PgServer = request.getfixturevalue("pg_server")
        args += ["--database-url", asyncio.run(pg.new_database(migrated=False))]
    fleet = Fleet(tmp_path, free_port(), args)
    try:
        fleet.start_server()
        fleet.admin = (data / "admin-token").read_text().strip()
        with fleet.http() as http:
            answer = http.post("/admin/tokens", json={"role": "worker", "name": "fault-suite"})
            fleet.worker_token = answer.raise_for_status().json()["token"]
        yield fleet
    finally:
        fleet.stop()


def _submit_all(fleet: Fleet, ledger: Path) -> list[str]:
    body = {
        "command": COMMAND.format(ledger=ledger),
        "lease_seconds": LEASE_SECONDS,
        "max_retries": 20,  # every fault may cost an attempt; none may cost the job
        "timeout": 60,
    }
    ids: list[str] = []
    with fleet.http() as http:
        for _ in range(JOBS):
            ids.append(http.post("/jobs", json=body).raise_for_status().json()["id"])
    return ids


def _completed(fleet: Fleet) -> int:
    """How many jobs are completed; 0 while the server is away."""
    try:
        with fleet.http() as http:
            answer = http.get("/jobs", params={"status": "completed", "limit": 1})
            return int(answer.headers["X-Total-Count"]) if answer.status_code == 200 else 0
    except httpx.HTTPError:
        return 0


def _wait_completed(fleet: Fleet, count: int, seconds: float) -> None:
    poll(lambda: _completed(fleet) >= count, seconds, f"{count} completed jobs")


def _inject_faults(fleet: Fleet) -> None:
    """Kill the server mid-run, freeze a worker past its leases, kill another outright."""
    assert fleet.server is not None
    _wait_completed(fleet, 30, 60)
    fleet.server.send_signal(signal.SIGKILL)
    fleet.server.wait(10)
    time.sleep(1.5)  # the workers keep running jobs with nobody to report to
    fleet.start_server()

    _wait_completed(fleet, 100, 90)
    frozen = fleet.workers["b"]
    frozen.send_signal(signal.SIGSTOP)
    time.sleep(LEASE_SECONDS * 1.5)  # its leases run out and are handed to the others
    frozen.send_signal(signal.SIGCONT)

    _wait_completed(fleet, 170, 90)
    fleet.workers["a"].send_signal(signal.SIGKILL)
    fleet.workers["a"].wait(10)
    fleet.start_worker("a2")


def _check_job(job: dict[str, Any], ran: set[tuple[str, int]]) -> str | None:
    """What is wrong with one finished job, or None."""
    job_id, last = job["id"], job["attempt"]
    if job["status"] != "completed":
        return f"{job_id} ended {job['status']}: {job.get('error_message')}"
    completed = [a for a in job["attempts"] if a["status"] == "completed"]
    if [a["attempt"] for a in completed] != [last]:
        return f"{job_id}: completed attempts {[a['attempt'] for a in completed]}, last {last}"
    expected = f"start {job_id} {last}\ndone {job_id} {last}\n"
    if job["stdout"] != expected:
        return f"{job_id}: stdout {job['stdout']!r}, expected {expected!r}"
    if (job_id, last) not in ran:
        return f"{job_id}: attempt {last} recorded completed but never ran to its end"
    return None


def test_every_acknowledged_job_completes_once_through_kills_and_freezes(
    fleet: Fleet, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    ledger.touch(mode=0o666)
    ids = _submit_all(fleet, ledger)
    for name in ("a", "b", "c"):
        fleet.start_worker(name)

    _inject_faults(fleet)
    _wait_completed(fleet, JOBS, 240)

    ran = {
        (job_id, int(attempt))
        for job_id, attempt in (line.split() for line in ledger.read_text().splitlines())
    }
    problems: list[str] = []
    with fleet.http() as http:
        for job_id in ids:
            problem = _check_job(http.get(f"/jobs/{job_id}").raise_for_status().json(), ran)
            if problem:
                problems.append(problem)
    assert not problems, f"{len(problems)} of {JOBS} jobs wrong, e.g. {problems[:5]}"
    # The faults really cost something: some job ran more than once.
    assert len(ran) > JOBS, "no fault hit a running job; the test proves nothing"
    for name, proc in fleet.workers.items():
        if name != "a":
            assert proc.poll() is None, f"worker {name} died: {proc.returncode}"
