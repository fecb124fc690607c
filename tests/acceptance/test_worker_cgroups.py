"""Each job in its own cgroup, with a real ``corral server`` and ``corral worker`` as root:
no daemon outlives its job (at its end or at cancel), and the worker's default limits
stop a job that allocates too much memory or forks too many processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.agent.process import alive
from tests.acceptance.test_worker_e2e import Cluster, cluster, poll

__all__ = ["cluster"]

PY = sys.executable


@pytest.fixture(scope="module")
def limited(cluster: Cluster) -> Iterator[subprocess.Popen[bytes]]:
    """One worker whose jobs get 64 MiB and 32 processes unless they ask otherwise."""
    if os.geteuid() != 0:
        pytest.fail("these tests need root: the worker creates cgroups under /sys/fs/cgroup")
    worker = cluster.worker(
        "limited", "--concurrency", "2", "--default-memory-mb", "64", "--default-pids", "32"
    )
    log = cluster.root / "limited.log"
    poll(lambda: "job isolation by" in log.read_text(), 20, "the worker's cgroup line")
    if "setrlimit" in log.read_text():
        pytest.fail(f"the worker found no writable cgroup: {log.read_text()}")
    yield worker
    worker.terminate()
    worker.wait(20)


def escapee_command(pidfile: Path, then: str) -> str:
    """A daemon that leaves the job's session and process group, then ``then``."""
    daemon = f"setsid sh -c 'sleep 300 & echo $! > {pidfile}' </dev/null >/dev/null 2>&1"
    return f"{daemon}; while [ ! -s {pidfile} ]; do sleep 0.01; done; {then}"


def test_item12_setsid_daemon_is_gone_when_its_job_ends(
    cluster: Cluster, limited: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon"
    job_id = cluster.submit(command=escapee_command(pidfile, "echo done"))
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    daemon = int(pidfile.read_text())
    poll(lambda: not alive(daemon), 5, "the daemon to be killed with its job")


def test_item12_cancel_kills_the_daemon_too(
    cluster: Cluster, limited: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    pidfile = tmp_path / "daemon"
    job_id = cluster.submit(command=escapee_command(pidfile, "sleep 300"))
    poll(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the daemon")
    assert cluster.cli("cancel", job_id).returncode == 0
    assert cluster.wait_status(job_id, ("cancelled",))["status"] == "cancelled"
    daemon = int(pidfile.read_text())
    poll(lambda: not alive(daemon), 10, "the daemon to be killed at cancel")


def test_item12_memory_limit_fails_the_job_with_the_reason(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    job_id = cluster.submit(command=f"{PY} -c 'data = b\"x\" * (200 << 20)'")
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "failed", job
    assert job["error_message"] == "memory limit of 64 MiB exceeded"
    assert limited.poll() is None  # the worker itself is fine


FORK_LOOP = (
    "import os, time\n"
    "n = 0\n"
    "for _ in range(200):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        time.sleep(30)\n"
    "        os._exit(0)\n"
    "    n += 1\n"
    "print(n)\n"
)


def test_item12_pids_limit_stops_a_fork_loop(
    cluster: Cluster, limited: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    script = tmp_path / "forks.py"
    script.write_text(FORK_LOOP)
    job_id = cluster.submit(command=f"{PY} {script}")
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    assert 0 < int(job["stdout"]) < 32
    # The machine and the worker are fine, and the next job runs.
    after = cluster.submit(command="echo still here")
    assert cluster.wait_status(after, ("completed", "failed"))["stdout"] == "still here\n"
    assert limited.poll() is None
