"""Each job in its own cgroup, with a real ``corral server`` and ``corral worker`` as root:
no daemon outlives its job (at its end or at cancel), and the worker's default limits
stop a job that allocates too much memory or forks too many processes.

The jobs share nothing with the test but their output, so these tests hold at every
isolation level (a job with its own uid and private ``/tmp`` cannot write the test's
files): a daemon is found on the host by a marker in its command line, and the jobs
run the system's ``/usr/bin/python3``, which any uid may run.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster, poll
from tests.processes import STARTUP

__all__ = ["cluster"]

PY = "/usr/bin/python3"
SANDBOXED = False  # set by the worker fixture from its start line


@pytest.fixture(scope="module")
def limited(cluster: Cluster) -> Iterator[subprocess.Popen[bytes]]:
    """One worker whose jobs get 64 MiB and 32 processes unless they ask otherwise."""
    if os.geteuid() != 0:
        pytest.fail("these tests need root: the worker creates cgroups under /sys/fs/cgroup")
    worker = cluster.worker(
        "limited", "--concurrency", "2", "--default-memory-mb", "64", "--default-pids", "32"
    )
    log = cluster.root / "limited.log"
    poll(lambda: "job isolation by" in log.read_text(), STARTUP, "the worker's cgroup line")
    if "setrlimit" in log.read_text():
        pytest.fail(f"the worker found no writable cgroup: {log.read_text()}")
    global SANDBOXED
    SANDBOXED = '"msg":"isolation sandbox' in log.read_text()
    yield worker
    worker.terminate()
    worker.wait(20)


def daemon_command(marker: str, then: str) -> str:
    """Start a ``sleep`` that leaves the job's session and process group, say it lives,
    then ``then``. The sleep's length is the marker the host looks for."""
    start = f"setsid sh -c 'sleep {marker} >/dev/null 2>&1 & echo $!'"
    return f"d=$({start}); kill -0 $d && echo daemon-alive; {then}"


def daemons(marker: str) -> list[int]:
    """Host pids of the processes whose command line carries ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def marker() -> str:
    return f"300.{uuid.uuid4().int % 10**9:09d}"  # a valid, unique sleep length


def test_item12_setsid_daemon_is_gone_when_its_job_ends(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    mark = marker()
    job_id = cluster.submit(command=daemon_command(mark, "echo done"))
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert (job["status"], job["stdout"]) == ("completed", "daemon-alive\ndone\n"), job
    poll(lambda: not daemons(mark), 5, "the daemon to be killed with its job")


def test_item12_cancel_kills_the_daemon_too(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    mark = marker()
    job_id = cluster.submit(command=daemon_command(mark, "sleep 300"))
    poll(lambda: "daemon-alive" in cluster.job(job_id)["stdout"], 10, "the daemon")
    assert daemons(mark)
    assert cluster.cli("cancel", job_id).returncode == 0
    assert cluster.wait_status(job_id, ("cancelled",))["status"] == "cancelled"
    poll(lambda: not daemons(mark), 10, "the daemon to be killed at cancel")


ALLOCATE = f"{PY} -c 'data = b\"x\" * (200 << 20)'"


def test_item12_memory_limit_fails_the_job_with_the_reason(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    job_id = cluster.submit(command=ALLOCATE)
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "failed", job
    assert job["error_message"] == "memory limit of 64 MiB exceeded"
    assert limited.poll() is None  # the worker itself is fine


FORK_LOOP = """
import os, time
n = 0
for _ in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print(n)
"""


def test_item12_pids_limit_stops_a_fork_loop(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    job_id = cluster.submit(command=f"{PY} -c {shlex.quote(FORK_LOOP)}")
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    assert 0 < int(job["stdout"]) < 32
    # The machine and the worker are fine, and the next job runs.
    after = cluster.submit(command="echo still here")
    assert cluster.wait_status(after, ("completed", "failed"))["stdout"] == "still here\n"
    assert limited.poll() is None


def test_item12_attempt_counts_the_leftover_daemon(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    mark = marker()
    job_id = cluster.submit(command=daemon_command(mark, "echo done"))
    assert cluster.wait_status(job_id, ("completed", "failed"))["status"] == "completed"
    poll(lambda: not daemons(mark), 5, "the daemon to be killed with its job")
    (attempt,) = cluster.job(job_id)["attempts"]
    # At sandbox level the job's PID namespace takes the daemon down with its main
    # process, before the cgroup looks: there the count is 0 (docs/isolation.md).
    assert attempt["leftover_processes"] in ((0, 1) if SANDBOXED else (1,))


def test_item12_submitted_memory_mb_is_the_limit(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    """The job's own ``resources`` win over the worker's default (64 MiB here)."""
    small = cluster.submit(command=ALLOCATE, resources={"memory_mb": 100})
    job = cluster.wait_status(small, ("completed", "failed"))
    assert (job["status"], job["error_message"]) == ("failed", "memory limit of 100 MiB exceeded")
    roomy = cluster.submit(command=ALLOCATE, resources={"memory_mb": 400})
    assert cluster.wait_status(roomy, ("completed", "failed"))["status"] == "completed"


def test_item12_submitted_pids_is_the_limit(
    cluster: Cluster, limited: subprocess.Popen[bytes]
) -> None:
    job_id = cluster.submit(command=f"{PY} -c {shlex.quote(FORK_LOOP)}", resources={"pids": 12})
    job = cluster.wait_status(job_id, ("completed", "failed"))
    assert job["status"] == "completed", job
    assert 0 < int(job["stdout"]) < 12


def cgroup2_options(point: str) -> set[str]:
    """The options ``/proc/mounts`` shows for the cgroup2 mount at ``point``."""
    for line in Path("/proc/mounts").read_text().splitlines():
        _, where, fstype, options, *_ = line.split()
        if (where, fstype) == (point, "cgroup2"):
            return set(options.split(","))
    raise AssertionError(f"no cgroup2 mount at {point} in /proc/mounts")


def test_worker_remounts_cgroup_v2_with_favordynmods(cluster: Cluster) -> None:
    """The worker's one line about ``favordynmods`` matches what the host had before it
    started (on, or turned on by it), and the option is on afterwards. A host whose
    cgroup2 has it already (it stays on until reboot) sees the "already" branch."""
    if os.geteuid() != 0:
        pytest.fail("this test needs root: the worker remounts cgroup2")
    point = next(
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[2] == "cgroup2"
    )
    had_it = "favordynmods" in cgroup2_options(point)
    worker = cluster.worker("dynmods", "--isolation", "none")
    log = cluster.root / "dynmods.log"
    try:
        found = poll(lambda: _favordynmods_line(log), 20, "the worker's favordynmods line")
    finally:
        worker.terminate()
        worker.wait(20)
    assert found["result"] == ("already_on" if had_it else "turned_on"), found
    assert found["mount"] == point
    assert "RCU grace period" in found["msg"]
    assert "favordynmods" in cgroup2_options(point)


def _favordynmods_line(log: Path) -> dict[str, str] | None:
    for line in log.read_text().splitlines():
        if '"action":"cgroup_favordynmods"' in line:
            found: dict[str, str] = json.loads(line)
            return found
    return None
