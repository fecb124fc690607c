"""The real `corral server`, `corral worker` and `corral submit` as subprocesses on 127.0.0.1.

One dispatcher per module; workers per test. Every wait polls with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.process import alive
from tests.processes import (
    CORRAL,
    HOST_VISIBLE,
    STARTUP,
    clean_env,
    poll,
    server_process,
    start_worker,
    stop_all,
    worker_token,
)


@dataclass
class Cluster:
    url: str
    data_dir: Path
    admin: str
    worker_token: str
    root: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.Client(base_url=self.url + "/api/v1", headers=headers, timeout=30)

    def job(self, job_id: str) -> dict[str, Any]:
        with self.http() as http:
            answer: dict[str, Any] = http.get(f"/jobs/{job_id}").raise_for_status().json()
            return answer

    def submit(self, **body: Any) -> str:
        with self.http() as http:
            job_id: str = http.post("/jobs", json=body).raise_for_status().json()["id"]
            return job_id

    def worker(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        proc = start_worker(
            self.url, self.worker_token, self.root, name, f"{name}.log", "--claim-wait", "3", *args
        )
        self.workers.append(proc)
        return proc

    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        env = clean_env(CORRAL_URL=self.url, CORRAL_TOKEN=self.admin)
        return subprocess.run(
            [*CORRAL, *args], env=env, capture_output=True, text=True, timeout=60, **kwargs
        )

    def wait_status(
        self, job_id: str, statuses: tuple[str, ...], seconds: float = 15
    ) -> dict[str, Any]:
        job: dict[str, Any] = poll(
            lambda: (job := self.job(job_id))["status"] in statuses and job,
            seconds,
            f"job {job_id} to be {statuses}",
        )
        return job


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    data = root / "data"
    # No post-restart reaping grace: the kill -9 test needs leases reaped at once.
    env = clean_env(CORRAL_LEASE_GRACE="0", CORRAL_REAPER_INTERVAL="0.5")
    with server_process(data, root / "server.log", env=env) as (url, _):
        admin = (data / "admin-token").read_text().strip()
        cluster = Cluster(url, data, admin, worker_token(data), root)
        try:
            yield cluster
        finally:
            stop_all(cluster.workers, 10)


@pytest.fixture(scope="module")
def shared_worker(cluster: Cluster) -> subprocess.Popen[bytes]:
    return cluster.worker("shared", "--concurrency", "4", "--grace", "1", *HOST_VISIBLE)


def pids_from(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def dead(pids: list[int]) -> bool:
    return not any(alive(p) for p in pids)


def test_output_streams_live_and_exit_code_returns(cluster: Cluster, shared_worker: Any) -> None:
    proc = subprocess.Popen(
        [
            *CORRAL,
            "submit",
            "--follow",
            "--",
            "sh",
            "-c",
            "echo first; sleep 2; echo second; exit 5",
        ],
        env=clean_env(CORRAL_URL=cluster.url, CORRAL_TOKEN=cluster.admin),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    begun = time.monotonic()
    assert proc.stdout.readline() == "first\n"
    first_at = time.monotonic() - begun
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 5
    assert rest == "second\n"
    assert first_at < time.monotonic() - begun - 1.5  # "first" arrived while the job ran
    assert "exited with code 5" in err


def test_wait_returns_exit_code_and_status_shows_it(cluster: Cluster, shared_worker: Any) -> None:
    done = cluster.cli("submit", "--wait", "--", "sh", "-c", "echo hi; exit 3")
    assert done.returncode == 3
    job_id = done.stderr.splitlines()[0]
    job = cluster.job(job_id)
    assert (job["status"], job["exit_code"], job["stdout"]) == ("failed", 3, "hi\n")
    assert cluster.cli("submit", "--wait", "--", "true").returncode == 0
    logs = cluster.cli("logs", job_id)
    assert logs.stdout == "hi\n"


def test_timeout_kills_grandchildren(cluster: Cluster, shared_worker: Any, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        f"sleep 300 & echo $! >> {pids}; "
        f"sh -c 'sleep 300 & echo $! >> {pids}; wait' & echo $! >> {pids}; wait"
    )
    done = cluster.cli("submit", "--wait", "--timeout", "1", "--", "sh", "-c", script)
    assert done.returncode != 0
    job = cluster.job(done.stderr.splitlines()[0])
    assert job["status"] == "failed"
    assert job["error_message"] == "timed out after 1 s"
    recorded = pids_from(pids)
    assert len(recorded) == 3
    poll(lambda: dead(recorded), 5, "the job's processes to die")


def test_cancel_running_job_kills_it(cluster: Cluster, shared_worker: Any, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    job_id = cluster.submit(command=f"sleep 300 & echo $! > {pids}; wait")
    poll(lambda: pids_from(pids), STARTUP, "the job to start")
    cancel = cluster.cli("cancel", job_id)
    assert cancel.returncode == 0, cancel.stderr
    job = cluster.wait_status(job_id, ("cancelled",), 10)
    assert job["status"] == "cancelled"
    poll(lambda: dead(pids_from(pids)), 5, "the cancelled job's processes to die")


def test_cli_errors_are_one_line(cluster: Cluster) -> None:
    missing = cluster.cli("status", "no-such-job")
    assert missing.returncode != 0
    assert missing.stderr.startswith("error: ") and len(missing.stderr.splitlines()) == 1
    assert "Traceback" not in missing.stderr


@pytest.mark.slow
def test_killed_worker_job_reruns_elsewhere_and_late_result_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    marks = tmp_path / "attempts"
    pids = tmp_path / "pids"
    doomed = cluster.worker("doomed", "--labels", "fault", "--concurrency", "1", *HOST_VISIBLE)
    # The first attempt outlives its worker; the retry finishes quickly.
    command = (
        f"echo $CORRAL_ATTEMPT >> {marks}; echo $$ >> {pids}; "
        "if [ $CORRAL_ATTEMPT = 1 ]; then sleep 300; fi; sleep 1; echo ok"
    )
    job_id = cluster.submit(command=command, labels=["fault"], lease_seconds=2, max_retries=3)
    poll(lambda: marks.exists() and marks.read_text().strip() == "1", 15, "the first attempt")
    doomed.kill()  # kill -9: no report, no release, no deregistration
    doomed.wait(5)
    cluster.worker("rescuer", "--labels", "fault", "--concurrency", "1", *HOST_VISIBLE)
    job = cluster.wait_status(job_id, ("completed", "failed"), 20)
    try:
        assert job["status"] == "completed", (job["error_message"], job["attempts"])
        assert job["attempt"] == 2
        assert marks.read_text().split() == ["1", "2"]
        assert job["executor_id"] == "rescuer"
        with cluster.http(cluster.worker_token) as http:
            body = {"executor_id": "doomed", "attempt": 1, "exit_code": 0}
            late = http.put(f"/jobs/{job_id}/complete", json=body)
        assert late.status_code == 409, late.text
        assert cluster.job(job_id)["executor_id"] == "rescuer"
        # The dead worker's job is an orphan now; the worker's next start sweeps it.
        orphan = pids_from(pids)[0]
        assert alive(orphan)
        cluster.worker("doomed", "--labels", "fault", *HOST_VISIBLE)
        poll(lambda: not alive(orphan), 10, "the orphan to be swept")
    finally:
        for pid in pids_from(pids):  # the dead worker's orphan, if still around
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_drains_then_deregisters(cluster: Cluster, tmp_path: Path) -> None:
    started = tmp_path / "started"
    drainer = cluster.worker("drainer", "--labels", "drain", "--concurrency", "2", *HOST_VISIBLE)
    job_id = cluster.submit(command=f"touch {started}; sleep 1.5; echo finished", labels=["drain"])
    poll(started.exists, 15, "the job to start")
    drainer.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # let the worker stop claiming before the next job arrives
    later = cluster.submit(command="echo never", labels=["drain"])
    assert drainer.wait(15) == 0
    job = cluster.job(job_id)
    assert (job["status"], job["stdout"]) == ("completed", "finished\n")
    assert cluster.job(later)["status"] == "pending"
    with cluster.http() as http:
        ids = [e["executor_id"] for e in http.get("/executors").json()]
    assert "drainer" not in ids or all(
        e["state"] != "online"
        for e in http.get("/executors").json()
        if e["executor_id"] == "drainer"
    )
    cluster.cli("cancel", later)


@pytest.mark.slow
def test_second_sigterm_kills_at_once(cluster: Cluster, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    stubborn = cluster.worker(
        "stubborn", "--labels", "stubborn", "--drain-timeout", "60", *HOST_VISIBLE
    )
    job_id = cluster.submit(
        command=f"sleep 300 & echo $! > {pids}; wait", labels=["stubborn"], max_retries=0
    )
    poll(lambda: pids_from(pids), 15, "the job to start")
    stubborn.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert stubborn.poll() is None  # still draining
    stubborn.send_signal(signal.SIGTERM)
    assert stubborn.wait(10) == 0
    poll(lambda: dead(pids_from(pids)), 5, "the job's processes to die")
    assert cluster.job(job_id)["status"] in ("failed", "pending")


def test_submit_options_and_listings(cluster: Cluster, shared_worker: Any) -> None:
    done = cluster.cli(
        "submit",
        "--wait",
        "--json",
        "--env",
        "GREETING=hello there",
        "--priority",
        "high",
        "--",
        "sh",
        "-c",
        'echo "$GREETING" "$1"',
        "sh",
        "it's quoted",
    )
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["stdout"]) == ("completed", "hello there it's quoted\n")
    assert job["priority"] == "foreground"
    listed = cluster.cli("jobs", "--status", "completed", "--limit", "500", "--wide")
    assert listed.stdout.splitlines()[0].split("\t")[:3] == ["id", "name", "status"]
    assert any(line.startswith(job["id"] + "\t-\tcompleted") for line in listed.stdout.splitlines())
    workers = json.loads(cluster.cli("workers", "--json").stdout)
    shared = next(w for w in workers if w["executor_id"] == "shared")
    assert shared["concurrency"] == 4 and shared["state"] == "online"
    status = cluster.cli("status", job["id"])
    assert "completed" in status.stdout


def test_login_saves_a_private_config_and_env_wins(cluster: Cluster, tmp_path: Path) -> None:
    home = {"XDG_CONFIG_HOME": str(tmp_path)}
    env = clean_env(**home)
    login = subprocess.run(
        [*CORRAL, "login", cluster.url, "--token", cluster.admin],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert login.returncode == 0, login.stderr
    saved = tmp_path / "corral" / "config.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert json.loads(saved.read_text()) == {"url": cluster.url, "token": cluster.admin}
    listed = subprocess.run(
        [*CORRAL, "jobs", "--json"], env=env, capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0 and isinstance(json.loads(listed.stdout), list)
    wrong = subprocess.run(
        [*CORRAL, "jobs"],
        env=clean_env(CORRAL_TOKEN="crl_wrong", **home),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert wrong.returncode != 0
    assert wrong.stderr.startswith("error: ") and "401" in wrong.stderr
