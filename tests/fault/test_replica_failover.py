"""A worker given two replicas (``--server A,B``) survives the death of the one it talks to.

Two ``corral server`` processes on one PostgreSQL database and a real ``corral worker``
given both URLs. While a job runs, replica A is killed with SIGKILL: the worker renews
the job's lease through B (its lease is shorter than the job, and B's reaper would give
it away otherwise), reports the outcome there, and goes on claiming from B. The job
completes exactly once, in its first attempt.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pg_server import PgServer
from tests.processes import HOST_VISIBLE, poll, start_worker
from tests.replicas import Replica, admin_token, start_replicas

pytestmark = [pytest.mark.slow, pytest.mark.fault]

LEASE_SECONDS = 3.0
COMMAND = (
    'echo "start $CORRAL_ATTEMPT"; sleep {seconds}; '
    'echo "$CORRAL_JOB_ID $CORRAL_ATTEMPT" >> {ledger}; echo "done $CORRAL_ATTEMPT"'
)


@pytest.fixture
def pair(pg_server: PgServer, tmp_path: Path) -> Iterator[list[Replica]]:
    dsn = asyncio.run(pg_server.new_database(migrated=False))
    replicas = start_replicas(tmp_path, dsn, "a", "b")
    try:
        yield replicas
    finally:
        for replica in replicas:
            replica.kill()


def _job(http: httpx.Client, job_id: str) -> dict[str, object]:
    answer: dict[str, object] = http.get(f"/jobs/{job_id}").raise_for_status().json()
    return answer


def test_a_worker_keeps_its_lease_and_reports_through_the_other_replica(
    pair: list[Replica], tmp_path: Path
) -> None:
    a, b = pair
    headers = {"Authorization": f"Bearer {admin_token(pair)}"}
    http = httpx.Client(base_url=f"{b.url}/api/v1", headers=headers, timeout=30)
    worker_token = http.post("/admin/tokens", json={"role": "worker", "name": "w"}).json()["token"]
    worker = start_worker(
        f"{a.url},{b.url}",
        worker_token,
        tmp_path,
        "w",
        "worker.log",
        *HOST_VISIBLE,
        "--claim-wait",
        "2",
        "--grace",
        "1",
    )
    ledger = tmp_path / "ledger"
    try:
        body = {
            "command": COMMAND.format(seconds=5, ledger=ledger),
            "lease_seconds": LEASE_SECONDS,
            "max_retries": 3,
        }
        job_id = http.post("/jobs", json=body).raise_for_status().json()["id"]
        poll(lambda: _job(http, job_id)["status"] == "running", 30, "the job to start")
        poll(lambda: a.requests("/api/v1/jobs/claim"), 5, "the worker to claim from A")
        a.kill()
        killed = time.monotonic()

        done = poll(
            lambda: (job := _job(http, job_id))["status"] in ("completed", "failed") and job,
            30,
            "the job to finish through B",
        )
        assert done["status"] == "completed", done
        assert done["attempt"] == 1  # never reaped and run again: its lease was kept via B
        assert "done 1" in str(done["stdout"])
        assert ledger.read_text().split("\n") == [f"{job_id} 1", ""]  # ran exactly once
        assert b.requests("/heartbeat") and b.requests("/api/v1/jobs/results")
        took = time.monotonic() - killed
        print(f"\njob finished through B {took:.1f} s after A died")  # noqa: T201

        # And the worker goes on working from B alone.
        quick = {"command": COMMAND.format(seconds=0, ledger=ledger)}
        second = http.post("/jobs", json=quick).raise_for_status().json()["id"]
        poll(lambda: _job(http, second)["status"] == "completed", 30, "a job claimed from B")
    finally:
        http.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log and "side_task_crashed" not in log, log[-3000:]
