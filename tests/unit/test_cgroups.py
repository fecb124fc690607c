"""Each job in its own cgroup, against the real /sys/fs/cgroup of this machine (as root):
detection, joining before the job runs, kill-all with the leftover count, memory, pids
and cpu limits, the OOM reason, the sweep at start, and the setrlimit fallback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.cgroup_detect import detect
from corral.agent.cgroups import Cgroups, worker_key
from corral.agent.dispatcher import parse_job
from corral.agent.executor import Execution, JobRun, RunResult, StopReason
from corral.agent.limits import LimitPolicy, Resources
from corral.agent.output import OutputForwarder
from corral.agent.process import alive
from corral.agent.reports import report_for
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec
from tests.unit.test_agent_executor import RecordingSink, until_dead

PY = sys.executable


def require_cgroups(cgroups: Cgroups | None) -> Cgroups:
    """These tests are about real cgroups: without them they fail, saying why."""
    if os.geteuid() != 0:
        pytest.fail("cgroup tests need root (they create groups under /sys/fs/cgroup)")
    if cgroups is None or cgroups.track is None:
        reason = cgroups.reason if cgroups is not None else "not detected"
        pytest.fail(f"no writable cgroup hierarchy on this machine: {reason}")
    return cgroups


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(
            tmp_path / "work",
            BinaryCache(tmp_path / "bin", http),
            grace=0.5,
            limits=LimitPolicy(max_memory_mb=4096, max_pids=1000),
        )
        require_cgroups(executor.cgroups)
        yield executor
        executor.close()


async def run(
    executor: Executor, command: str, resources: Resources | None = None, limit_s: int = 30
) -> tuple[RunResult, RecordingSink]:
    sink = RecordingSink()
    job = JobRun("job", 1, JobSpec(command=command, timeout=limit_s), resources=resources)
    return await Execution(executor, job, OutputForwarder(sink)).run(), sink


def job_groups(executor: Executor) -> list[Path]:
    cgroups = require_cgroups(executor.cgroups)
    parents = {cgroups.track, *cgroups.limits.values()} - {None}
    found = [p for h in parents if h is not None for p in h.parent.iterdir() if p.is_dir()]
    return [p for p in found if p not in cgroups.idle]  # empty, kept for the next job


def test_item12_detect_says_what_it_got_and_why(tmp_path: Path) -> None:
    cgroups = require_cgroups(detect(worker_key(tmp_path)))
    try:
        assert cgroups.mode in ("cgroup v2", "mixed cgroup v1 + v2", "cgroup v1")
        assert set(cgroups.limits) == {"memory", "pids", "cpu"}, cgroups.reason
        assert str(cgroups.track.parent if cgroups.track else "") in cgroups.reason
    finally:
        cgroups.close()


async def test_item12_job_is_in_its_cgroup_from_its_first_process(executor: Executor) -> None:
    result, sink = await run(executor, "cat /proc/self/cgroup", Resources(memory_mb=256))
    assert result.exit_code == 0, sink.text("stderr")
    lines = sink.text().splitlines()
    assert any(line.startswith("0::") and line.endswith("/job.1") for line in lines), lines
    assert any(":memory:" in line and line.endswith("/job.1") for line in lines), lines
    assert job_groups(executor) == []  # removed once the job ended


async def test_item12_setsid_double_fork_dies_with_its_job(
    executor: Executor, tmp_path: Path
) -> None:
    pidfile = tmp_path / "escapee"
    # The daemon leaves the job's session and process group: only the cgroup still holds it.
    command = f"setsid sh -c 'sleep 300 & echo $! > {pidfile}' < /dev/null > /dev/null 2>&1"
    result, _ = await run(executor, f"{command}; while [ ! -s {pidfile} ]; do sleep 0.01; done")
    assert result.exit_code == 0
    escapee = int(pidfile.read_text())
    assert await until_dead([escapee]) == []
    assert result.leftover_processes == 1
    report = report_for(JobRun("job", 1, JobSpec(command="x")), result)
    assert report is not None and report["leftover_processes"] == 1
    # The group, empty again, is kept for the next job without limits, which finds
    # nothing of the last one in it.
    assert len(require_cgroups(executor.cgroups).idle) == 1
    again, _ = await run(executor, "true")
    assert (again.exit_code, again.leftover_processes) == (0, 0)
    assert len(require_cgroups(executor.cgroups).idle) == 1


async def test_item12_timeout_kills_the_escapees_too(executor: Executor, tmp_path: Path) -> None:
    pidfile = tmp_path / "escapee"
    command = f"setsid sh -c 'sleep 300 & echo $! > {pidfile}' </dev/null >/dev/null 2>&1; sleep 60"
    started = time.monotonic()
    result, _ = await run(executor, command, limit_s=1)
    assert result.stop_reason == "timeout"
    assert await until_dead([int(pidfile.read_text())]) == []
    assert result.leftover_processes == 1
    assert time.monotonic() - started < 10


async def test_item12_memory_limit_kills_and_says_so(executor: Executor) -> None:
    allocate = f"{PY} -c 'data = b\"x\" * (200 << 20); print(len(data))'"
    result, sink = await run(executor, allocate, Resources(memory_mb=64))
    assert result.exit_code == 137, sink.text("stderr")
    assert result.limit_error == "memory limit of 64 MiB exceeded"
    report = report_for(JobRun("job", 1, JobSpec(command="x")), result)
    assert report is not None
    assert (report["status"], report["error_message"]) == (
        "failed",
        "memory limit of 64 MiB exceeded",
    )
    fits, _ = await run(executor, allocate, Resources(memory_mb=400))
    assert (fits.exit_code, fits.limit_error) == (0, None)


FORK_LOOP = """
import os, time
n = 0
for _ in range(100):
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


async def test_item12_pids_limit_stops_a_fork_loop(executor: Executor, tmp_path: Path) -> None:
    script = tmp_path / "forks.py"
    script.write_text(FORK_LOOP)
    result, sink = await run(executor, f"{PY} {script}", Resources(pids=32))
    assert result.exit_code == 0, sink.text("stderr")
    forked = int(sink.text())
    assert 0 < forked < 32  # the shell and the loop itself count too
    assert result.leftover_processes == forked  # every sleeping child killed with the job
    after = await asyncio.create_subprocess_exec("true")  # the machine still forks
    assert await after.wait() == 0


async def test_item12_cpu_quota_is_written(executor: Executor) -> None:
    cgroups = require_cgroups(executor.cgroups)
    cpu = cgroups.limits["cpu"]
    name = "cpu.max" if cpu.version == 2 else "cpu.cfs_quota_us"
    result, sink = await run(executor, f"cat {cpu.parent / 'job.1' / name}", Resources(cpus=0.5))
    assert result.exit_code == 0, sink.text("stderr")
    assert sink.text().split()[0] == "50000"


async def test_item12_limits_above_the_worker_maximum_are_refused(executor: Executor) -> None:
    result, _ = await run(executor, "true", Resources(memory_mb=8192))
    assert not result.started
    assert result.error == (
        "the job asks for 8192 MiB of memory; this worker allows at most 4096 MiB"
    )
    assert job_groups(executor) == []


def test_item12_defaults_fill_what_the_job_did_not_ask() -> None:
    policy = LimitPolicy(default_memory_mb=512, default_pids=100)
    assert policy.apply(None) == Resources(memory_mb=512, pids=100)
    assert policy.apply(Resources(pids=5)) == Resources(memory_mb=512, pids=5)


def test_item12_parse_job_reads_resources() -> None:
    wire = {"id": "j", "command": "true", "resources": {"cpus": 1.5, "memory_mb": 64}}
    assert parse_job(wire).resources == Resources(cpus=1.5, memory_mb=64)
    assert parse_job({"id": "j", "command": "true", "resources": None}).resources is None
    assert parse_job({"id": "j", "command": "true"}).resources is None
    odd = {"cpus": True, "memory_mb": "64", "pids": -1}  # not numbers, or not positive
    assert parse_job({"id": "j", "command": "true", "resources": odd}).resources is None


async def test_item12_worker_start_kills_what_a_previous_run_left(tmp_path: Path) -> None:
    work = (tmp_path / "work").resolve()
    cgroups = require_cgroups(detect(worker_key(work)))
    group = cgroups.job("stale.1", Resources())
    orphan = await asyncio.create_subprocess_exec(*group.argv_prefix(), "setsid", "sleep", "300")
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient() as http:
        executor = Executor(work, BinaryCache(tmp_path / "bin", http), limits=LimitPolicy())
        try:
            assert await asyncio.wait_for(orphan.wait(), 5) == -9
            assert job_groups(executor) == []
        finally:
            executor.close()


def test_item12_setrlimit_fallback_limits_memory(tmp_path: Path) -> None:
    """Explicitly the fallback (no writable cgroup): prlimit caps the address space."""
    fallback = Cgroups("setrlimit", "test: no cgroup")
    group = fallback.job("j.1", Resources(memory_mb=64, pids=50))
    assert group.argv_prefix()[0] == "prlimit"
    allocate = [PY, "-c", "data = b'x' * (200 << 20)"]
    done = subprocess.run([*group.argv_prefix(), *allocate], capture_output=True, check=False)
    assert done.returncode != 0 and b"MemoryError" in done.stderr
    assert group.leftovers(1) is None
    assert alive(os.getpid())


@pytest.mark.parametrize("inline", [True, False], ids=["in-job-shell", "exec-prefix"])
def test_item12_a_failed_join_runs_nothing(tmp_path: Path, inline: bool) -> None:
    cgroups = require_cgroups(detect(worker_key(tmp_path)))
    try:
        group = cgroups.job("j.1", Resources(pids=10))
        script = "cat /proc/self/cgroup; echo ran"
        argv = group.wrap(["/bin/sh", "-c", script], script if inline else None)
        assert (argv.count("/bin/sh"), argv[2].endswith(script)) == (
            (1, True) if inline else (2, False)  # inline: no second shell is exec'd
        )
        joined = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert joined.returncode == 0 and "/j.1\n" in joined.stdout, joined
        group.remove()  # now the join must fail, and the script must not run
        refused = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert (refused.returncode, refused.stdout) == (125, "")
    finally:
        cgroups.close()


async def start_with_daemon(
    executor: Executor, pidfile: Path
) -> tuple[Execution, asyncio.Task[RunResult], int]:
    """A running job whose daemon has left its session; returns (execution, task, daemon pid)."""
    daemon = f"setsid sh -c 'sleep 300 & echo $! > {pidfile}' </dev/null >/dev/null 2>&1"
    job = JobRun("job", 1, JobSpec(command=f"{daemon}; sleep 300", timeout=60))
    execution = Execution(executor, job, OutputForwarder(RecordingSink()))
    task = asyncio.ensure_future(execution.run())
    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(lambda: pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the daemon never started"
        await asyncio.sleep(0.02)
    return execution, task, int(await asyncio.to_thread(pidfile.read_text))


@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.LOST, StopReason.SHUTDOWN])
async def test_item12_every_stop_kills_the_daemon(
    executor: Executor, tmp_path: Path, reason: StopReason
) -> None:
    execution, task, daemon = await start_with_daemon(executor, tmp_path / "daemon")
    execution.stop(reason)
    result = await asyncio.wait_for(task, 10)
    assert result.stop_reason is reason
    assert await until_dead([daemon]) == []
    assert result.leftover_processes == 1
    assert job_groups(executor) == []


async def test_item12_a_run_cancelled_midway_still_kills_its_cgroup(
    executor: Executor, tmp_path: Path
) -> None:
    """A drain that runs out of time cancels the runner task itself: the cgroup still goes."""
    execution, task, daemon = await start_with_daemon(executor, tmp_path / "daemon")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await until_dead([daemon]) == []
    assert execution.group is not None
    assert await asyncio.to_thread(execution.group.popen.wait, 5) == -9  # the leader too
    assert job_groups(executor) == []


async def test_item12_v1_only_layout_freezes_and_kills_the_daemon(tmp_path: Path) -> None:
    """Without cgroup v2 (no cgroup.kill), the v1 freezer tracks the job and the kill
    freezes it, SIGKILLs every pid and thaws, until it is empty."""
    cgroups = require_cgroups(detect(worker_key(tmp_path), v2=False))
    try:
        assert cgroups.mode == "cgroup v1" and cgroups.track is not None
        assert cgroups.track.parent.parts[:4] == ("/", "sys", "fs", "cgroup")
        assert "freezer" in str(cgroups.track.parent)
        group = cgroups.job("j.1", Resources(pids=20))
        pidfile = tmp_path / "daemon"
        script = f"setsid sh -c 'sleep 300 & echo $! > {pidfile}' </dev/null >/dev/null 2>&1"
        leader = await asyncio.create_subprocess_exec(*group.wrap(["/bin/sh", "-c", script]))
        assert await leader.wait() == 0
        daemon = int(await asyncio.to_thread(pidfile.read_text))
        assert group.leftovers(leader.pid) == 1
        await group.kill_all()
        assert await until_dead([daemon]) == []
        group.remove()
    finally:
        cgroups.close()
