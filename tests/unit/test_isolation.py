"""Isolation levels at the executor, with real bwrap/setpriv processes (the tests run as root):
uid ranges, ``network: false``, the wrapped argv and the job directory it is given."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.dispatcher import parse_job
from corral.agent.executor import Execution, JobRun, RunResult, job_env
from corral.agent.isolation import (
    Isolation,
    IsolationUnavailable,
    JobIdentity,
    Level,
    UidPool,
    choose,
    parse_uid_range,
)
from corral.agent.output import OutputForwarder
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec
from tests.unit.test_agent_executor import RecordingSink

CONNECT = (
    'python3 -c \'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)'
    '; print("connected")\' {port} 2>&1 | tail -1'
)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections: the dispatcher's, as far as a job knows."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def executor_at(tmp_path: Path, level: Level) -> AsyncIterator[Executor]:
    os.makedirs(tmp_path, exist_ok=True)
    os.chmod(tmp_path, 0o711)  # pytest's dirs are 0700: let a job's uid reach its own dir
    async with httpx.AsyncClient() as http:
        executor = Executor(
            tmp_path / "work",
            BinaryCache(tmp_path / "work" / "binaries", http),
            grace=0.5,
            isolation=Isolation(level),
        )
        yield executor
        executor.close()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Executor]:
    async for executor in executor_at(tmp_path, Level.SANDBOX):
        yield executor


@pytest.fixture
async def user(tmp_path: Path) -> AsyncIterator[Executor]:
    async for executor in executor_at(tmp_path, Level.USER):
        yield executor


async def run(executor: Executor, command: str, *, network: bool = True) -> tuple[RunResult, str]:
    sink = RecordingSink()
    job = JobRun("job", 1, JobSpec(command=command), network=network)
    result = await Execution(executor, job, OutputForwarder(sink)).run()
    return result, sink.text()


async def test_network_false_job_cannot_connect_to_the_dispatcher_port(
    sandbox: Executor, listener: int
) -> None:
    _, out = await run(sandbox, CONNECT.format(port=listener))
    assert out == "connected\n"  # the control: with network, the port answers
    refused, out = await run(sandbox, CONNECT.format(port=listener), network=False)
    assert refused.started
    assert "connected" not in out
    assert "Connection refused" in out, out  # its own loopback, where nothing listens


async def test_network_false_is_refused_where_it_cannot_be_enforced(
    user: Executor, listener: int
) -> None:
    result, out = await run(user, CONNECT.format(port=listener), network=False)
    assert not result.started
    assert result.retryable  # another worker, one that can, may take it
    assert result.error is not None and "cannot run a job without network" in result.error
    assert out == ""


async def test_user_level_job_dir_is_owned_by_the_job_uid(user: Executor) -> None:
    # pytest's own dirs above are 0700, so the job only works with relative paths here.
    script = 'id -u; stat -c "%u %a" .; ls -ld ../ | cut -c1-10; [ "$HOME" = "$PWD" ] && echo home'
    result, out = await run(user, script)
    uid, dir_stat, parent, home = out.splitlines()
    assert home == "home"
    assert result.exit_code == 0
    assert int(uid) in parse_uid_range("200000-265535")
    assert dir_stat == f"{uid} 700"
    assert parent == "drwx--x--x"  # the jobs dir: traversable, not listable


def test_parse_job_reads_network_absent_as_true() -> None:
    assert parse_job({"id": "j", "command": "true"}).network is True
    assert parse_job({"id": "j", "command": "true", "network": None}).network is True
    assert parse_job({"id": "j", "command": "true", "network": False}).network is False


def test_uid_range_never_holds_root_or_the_worker() -> None:
    assert parse_uid_range("200000-200003") == range(200000, 200004)
    for bad in ("0-10", "10-5", "abc", f"{os.getuid()}-{os.getuid() + 1}", "100"):
        with pytest.raises(IsolationUnavailable):
            parse_uid_range(bad)


def test_uid_pool_reuses_a_freed_uid_last() -> None:
    pool = UidPool(range(10, 13))
    first, second = pool.acquire(), pool.acquire()
    assert (first, second) == (10, 11)
    assert first is not None
    pool.release(first)
    assert pool.acquire() == 12
    assert pool.acquire() == 10
    assert pool.acquire() is None  # all three busy


def test_auto_is_sandbox_here_and_none_is_always_possible() -> None:
    assert choose("auto").level is Level.SANDBOX
    assert choose("none").level is Level.NONE
    with pytest.raises(IsolationUnavailable):
        choose("chroot")


def test_the_worker_token_is_never_in_a_jobs_environment() -> None:
    base = {"PATH": "/usr/bin", "CORRAL_TOKEN": "tok", "CORRAL_TOKEN_FILE": "/etc/t", "HOME": "/r"}
    env = job_env(JobRun("j", 1, JobSpec(command="true")), base, Path("/w"))
    assert not any("tok" in value or name.startswith("CORRAL_TOKEN") for name, value in env.items())
    identity = JobIdentity(200000, Path("/w/jobs/j.1"))
    isolated = Isolation(Level.USER).env({**env, "USER": "root"}, identity)
    assert isolated["HOME"] == "/w/jobs/j.1"
    assert "USER" not in isolated


async def test_a_sandboxed_job_reaches_its_home_under_a_closed_parent() -> None:
    """A work dir under a 0700 directory outside /tmp (``/root/corral-work``, say): the
    sandbox hides that directory behind a tmpfs and the job still reaches its HOME, by
    its full path, as a binary_url job must reach its binary."""
    closed = Path(tempfile.mkdtemp(prefix="corral-closed-", dir="/var/tmp"))
    os.chmod(closed, 0o700)
    try:
        async for executor in executor_at(closed / "inner", Level.SANDBOX):
            result, out = await run(executor, 'cd "$HOME" && echo reached')
            assert (result.exit_code, out) == (0, "reached\n")
    finally:
        shutil.rmtree(closed)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to run a worker without one cap")
def test_a_worker_without_cap_fowner_does_not_claim_the_user_level() -> None:
    """Without CAP_FOWNER every job failed at the user level ("could not isolate the
    job"): the chmod after the chown is refused. The level check now asks for it."""
    import subprocess
    import sys

    probe = "from corral.agent.isolation import can_switch_uid; print(can_switch_uid())"
    caps = "--bounding-set=-all,+chown,+dac_override,+setuid,+setgid,+kill"
    done = subprocess.run(
        ["setpriv", caps, "--inh-caps=-all", sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "(False, 'the worker lacks CAP_FOWNER (run it as root)')"
