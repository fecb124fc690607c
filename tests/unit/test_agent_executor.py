"""The executor with real subprocesses: exit codes, process-group kills, workdirs, binaries."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.executor import Execution, JobRun, RunResult, StopReason
from corral.agent.output import OutputForwarder
from corral.agent.process import alive, spawn_in
from corral.agent.spool import Chunk
from corral.agent.workdir import Executor, WorkDirBusy
from corral.domain.jobs import JobSpec


class RecordingSink:
    """Collects what would be sent to the dispatcher."""

    def __init__(self) -> None:
        self.sent: dict[str, list[str]] = {"stdout": [], "stderr": []}

    async def send(self, chunk: Chunk) -> bool:
        self.sent[chunk.stream].append(chunk.text)
        return False

    def text(self, stream: str = "stdout") -> str:
        return "".join(self.sent[stream])


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http), grace=0.5)
        yield executor
        executor.close()


async def run(
    executor: Executor, spec: JobSpec, sink: RecordingSink | None = None, job_id: str = "job"
) -> tuple[RunResult, RecordingSink]:
    sink = sink or RecordingSink()
    execution = Execution(executor, JobRun(job_id, 1, spec), OutputForwarder(sink))
    return await execution.run(), sink


def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


async def until_dead(pids: list[int], seconds: float = 5.0) -> list[int]:
    """Survivors after polling with a deadline (an exiting process may linger a moment)."""
    deadline = time.monotonic() + seconds
    # /proc has no event to wait on: polling with a deadline is the honest way.
    while (survivors := [p for p in pids if alive(p)]) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return survivors


async def test_exit_codes_and_output(executor: Executor) -> None:
    ok, sink = await run(executor, JobSpec(command="echo out; echo err >&2"))
    assert (ok.started, ok.exit_code, ok.stop_reason) == (True, 0, None)
    assert sink.text("stdout") == "out\n"
    assert sink.text("stderr") == "err\n"
    failed, _ = await run(executor, JobSpec(command="exit 7"))
    assert failed.exit_code == 7
    signalled, _ = await run(executor, JobSpec(command="kill -9 $$"))
    assert (signalled.returncode, signalled.exit_code) == (-9, 137)


async def test_arguments_reach_the_command(executor: Executor) -> None:
    result, sink = await run(executor, JobSpec(command='printf "%s|" "$@"', arguments=("a b", "c")))
    assert result.exit_code == 0
    assert sink.text() == "a b|c|"


async def test_timeout_kills_grandchildren(executor: Executor, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        f"sleep 300 & echo $! >> {pids}; "
        f"sh -c 'trap \"\" TERM; sleep 300 & echo $! >> {pids}; wait' & echo $! >> {pids}; "
        "wait"
    )
    begun = time.monotonic()
    result, _ = await run(executor, JobSpec(command=script, timeout=1))
    assert result.stop_reason is StopReason.TIMEOUT
    assert time.monotonic() - begun < 5
    recorded = pids_in(pids)
    assert len(recorded) == 3
    assert await until_dead(recorded) == []


async def test_background_leftovers_die_with_the_job(executor: Executor, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result, _ = await run(executor, JobSpec(command=f"sleep 300 & echo $! > {pids}"))
    assert result.exit_code == 0
    assert await until_dead(pids_in(pids)) == []


async def test_stop_cancel_kills_the_group(executor: Executor, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spec = JobSpec(command=f"sleep 300 & echo $! > {pids}; wait")
    execution = Execution(executor, JobRun("c", 1, spec), OutputForwarder(RecordingSink()))
    task = asyncio.create_task(execution.run())
    deadline = time.monotonic() + 5
    while not (pids.exists() and pids.read_text().strip()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    execution.stop(StopReason.CANCEL)
    result = await task
    assert result.stop_reason is StopReason.CANCEL
    assert await until_dead(pids_in(pids)) == []


async def test_stop_before_start_runs_nothing(executor: Executor, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    spec = JobSpec(command=f"touch {marker}")
    execution = Execution(executor, JobRun("s", 1, spec), OutputForwarder(RecordingSink()))
    execution.stop(StopReason.SHUTDOWN)
    result = await execution.run()
    assert (result.started, result.stop_reason) == (False, StopReason.SHUTDOWN)
    assert not marker.exists()


async def test_working_directory_inside_job_dir(executor: Executor) -> None:
    result, sink = await run(executor, JobSpec(command="pwd", working_directory="sub/dir"))
    assert result.exit_code == 0
    assert sink.text().strip().endswith("/job.1/sub/dir")
    assert list(executor.jobs_dir.iterdir()) == []  # the per-job directory is removed


@pytest.mark.parametrize("escape", ["../outside", "/etc", "a/../../b"])
async def test_working_directory_escape_refused(
    executor: Executor, tmp_path: Path, escape: str
) -> None:
    marker = tmp_path / "marker"
    result, _ = await run(executor, JobSpec(command=f"touch {marker}", working_directory=escape))
    assert not result.started
    assert result.error is not None and "working_directory" in result.error
    assert not marker.exists()


async def test_environment_is_minimal_plus_job_vars(
    executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_SECRET", "do-not-leak")
    spec = JobSpec(command="env", env={"GREETING": "hi", "PATH": "/usr/bin:/bin"})
    result, sink = await run(executor, spec, job_id="envjob")
    env = dict(line.split("=", 1) for line in sink.text().splitlines() if "=" in line)
    assert result.exit_code == 0
    assert env["GREETING"] == "hi"
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["CORRAL_JOB_ID"] == "envjob"
    assert "WORKER_SECRET" not in env


BINARY = b'#!/bin/sh\necho from-binary "$@"\ntouch "$MARKER"\n'


def binary_client(calls: list[str]) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(200, content=BINARY)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_binary_sha256_mismatch_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    calls: list[str] = []
    async with binary_client(calls) as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "cache", http))
        spec = JobSpec(
            binary_url="http://files.test/tool", binary_sha256="0" * 64, env={"MARKER": str(marker)}
        )
        result, _ = await run(executor, spec)
        executor.close()
    assert not result.started
    assert result.error is not None and "sha256 mismatch" in result.error
    assert not result.retryable
    assert not marker.exists()
    assert not any((tmp_path / "cache").iterdir())  # nothing half-downloaded stays behind


async def test_binary_verified_runs_and_is_cached(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    calls: list[str] = []
    digest = hashlib.sha256(BINARY).hexdigest()
    async with binary_client(calls) as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "cache", http))
        spec = JobSpec(
            binary_url="http://files.test/tool",
            binary_sha256=digest,
            arguments=("x",),
            env={"MARKER": str(marker)},
        )
        first, sink = await run(executor, spec, job_id="b1")
        second, _ = await run(executor, spec, job_id="b2")
        executor.close()
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert sink.text() == "from-binary x\n"
    assert marker.exists()
    assert len(calls) == 1
    assert os.access(tmp_path / "cache" / digest, os.X_OK)


async def test_binary_download_error_is_retryable(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "cache", http))
        spec = JobSpec(binary_url="http://files.test/tool", binary_sha256="a" * 64)
        result, _ = await run(executor, spec)
        executor.close()
    assert not result.started
    assert result.retryable
    assert result.error is not None and "HTTP 503" in result.error


async def test_many_short_jobs_concurrently(executor: Executor) -> None:
    results = await asyncio.gather(
        *(run(executor, JobSpec(command="true"), job_id=f"t{i}") for i in range(50))
    )
    assert [r.exit_code for r, _ in results] == [0] * 50


def test_work_dir_is_exclusive_and_sweeps_orphans(tmp_path: Path) -> None:
    work = tmp_path / "work"
    cache = BinaryCache(tmp_path / "bin", httpx.AsyncClient())  # never used: nothing to fetch
    first = Executor(work, cache)
    with pytest.raises(WorkDirBusy):
        Executor(work, cache)
    # A job left running by a worker that died (kill -9) carries the work dir mark.
    env = {"PATH": os.environ["PATH"], "CORRAL_WORKER_DIR": str(work.resolve())}
    orphan = subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        first.close()
        Executor(work, cache).close()
        assert orphan.wait(5) == -9
        assert bystander.poll() is None
    finally:
        for proc in (orphan, bystander):
            proc.kill()
            proc.wait()


TRAPPING = (
    "trap 'echo caught; sleep 1; echo finished; exit 0' TERM; "
    "echo ready; while :; do sleep 0.1; done"
)


@pytest.mark.parametrize("reason", [StopReason.CANCEL, StopReason.LOST, StopReason.SHUTDOWN])
async def test_item24_stop_gives_the_job_its_grace(tmp_path: Path, reason: StopReason) -> None:
    """The /bin/sh -c leader dies at once on SIGTERM; the program under it traps it and
    needs 1 s: with a 3 s grace it must get that second, whatever the leader does."""
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http), grace=3.0)
        sink = RecordingSink()
        command = f"sh -c {shlex.quote(TRAPPING)}"  # a program under the shell wrapper
        execution = Execution(
            executor, JobRun("g", 1, JobSpec(command=command)), OutputForwarder(sink)
        )
        task = asyncio.create_task(execution.run())
        deadline = time.monotonic() + 5
        while "ready" not in sink.text():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        execution.stop(reason)
        result = await task
        executor.close()
    assert sink.text() == "ready\ncaught\nfinished\n"
    assert result.stop_reason is reason


async def test_item24_timeout_gives_the_job_its_grace(tmp_path: Path) -> None:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http), grace=3.0)
        spec = JobSpec(command=f"sh -c {shlex.quote(TRAPPING)}", timeout=1)
        result, sink = await run(executor, spec)
        executor.close()
    assert sink.text() == "ready\ncaught\nfinished\n"
    assert result.stop_reason is StopReason.TIMEOUT


async def test_every_job_reads_and_writes_dev_null_as_its_stdin(executor: Executor) -> None:
    """One shared /dev/null serves every job's stdin: read (end of file at once) and
    write (discarded), as a fresh one would, job after job."""
    for _ in range(3):
        result, sink = await run(executor, JobSpec(command="cat; echo gone >&0 && echo ok"))
        assert (result.exit_code, sink.text(), sink.text("stderr")) == (0, "ok\n", "")


# A command line the kernel copies for a while before the child's exec completes: a
# spawn of it holds its thread in vfork() long enough to see what the loop does.
LONG_EXEC = ["x" * 100_000] * 15


async def test_the_loop_runs_on_while_a_job_is_spawned(tmp_path: Path) -> None:
    """A spawn waits in vfork() for its child's exec off the event loop: a task of the
    loop keeps ticking through it (on the loop, it would not tick once)."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    with ThreadPoolExecutor(1) as pool:
        running = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        before = ticks
        group = await spawn_in(pool, ["/bin/true", *LONG_EXEC], cwd=tmp_path, env={})
        during = ticks - before
        running.cancel()
        assert await group.wait_exit() == 0
    assert during > 10, during


async def test_a_spawn_given_up_midway_leaves_nothing_running(tmp_path: Path) -> None:
    marker = f"{os.getpid()}.{time.monotonic_ns() % 10**9}"
    with ThreadPoolExecutor(1) as pool:
        argv = ["/bin/sh", "-c", "sleep 30; exit", marker, *LONG_EXEC]  # $0: the marker
        spawning = asyncio.ensure_future(spawn_in(pool, argv, cwd=tmp_path, env={}))
        await asyncio.sleep(0)
        spawning.cancel()
        with pytest.raises(asyncio.CancelledError):
            await spawning
    # The pool is shut down: the spawn has landed, and its group is killed at once.
    assert await until_dead(_running(marker)) == []


def _running(marker: str) -> list[int]:
    """Pids whose command line carries ``marker``."""
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as cmdline:
                if name.isdigit() and marker.encode() in cmdline.read():
                    found.append(int(name))
        except OSError:
            continue
    return found
