"""Job directories: reused (renamed) only when their job left them exactly as given, and
every job, reused directory or not, starts in an empty one named after it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.executor import Execution, JobRun
from corral.agent.jobdirs import JobDirs
from corral.agent.limits import LimitPolicy
from corral.agent.output import OutputForwarder
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec
from tests.unit.test_agent_executor import RecordingSink
from tests.unit.test_cgroups import require_cgroups


def dirs(tmp_path: Path, *, reuse: bool = True) -> JobDirs:
    (tmp_path / "jobs").mkdir(exist_ok=True)
    return JobDirs(tmp_path, reuse=reuse)


async def test_a_directory_left_as_given_is_renamed_for_the_next_job(tmp_path: Path) -> None:
    jobs = dirs(tmp_path)
    first = jobs.path("a", 1)
    jobs.make(first)
    inode = first.stat().st_ino
    await jobs.remove(first)
    assert not first.exists() and len(list(jobs.idle.iterdir())) == 1
    second = jobs.path("b", 1)
    jobs.make(second)
    assert second.stat().st_ino == inode  # the same directory, under its new name
    assert list(jobs.idle.iterdir()) == [] and list(second.iterdir()) == []


@pytest.mark.parametrize("change", ["file", "mode", "xattr"])
async def test_a_directory_changed_by_its_job_is_removed(tmp_path: Path, change: str) -> None:
    jobs = dirs(tmp_path)
    job_dir = jobs.path("a", 1)
    jobs.make(job_dir)
    if change == "file":
        (job_dir / "left.txt").write_text("x")
    elif change == "mode":
        job_dir.chmod(0o777)
    else:
        os.setxattr(job_dir, "user.left", b"x")
    await jobs.remove(job_dir)
    assert not job_dir.exists()
    assert list(jobs.idle.iterdir()) == []
    jobs.make(jobs.path("b", 1))
    assert list(jobs.path("b", 1).iterdir()) == []


async def test_nothing_is_kept_when_reuse_is_off(tmp_path: Path) -> None:
    jobs = dirs(tmp_path, reuse=False)
    job_dir = jobs.path("a", 1)
    jobs.make(job_dir)
    await jobs.remove(job_dir)
    assert not job_dir.exists() and not jobs.idle.exists()


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(
            tmp_path / "work", BinaryCache(tmp_path / "bin", http), limits=LimitPolicy()
        )
        require_cgroups(executor.cgroups)
        yield executor
        executor.close()


async def run(executor: Executor, job_id: str, command: str) -> str:
    sink = RecordingSink()
    job = JobRun(job_id, 1, JobSpec(command=command))
    result = await Execution(executor, job, OutputForwarder(sink)).run()
    assert result.exit_code == 0, sink.text("stderr")
    return sink.text()


async def test_each_job_starts_in_an_empty_directory_of_its_own(executor: Executor) -> None:
    assert executor.dirs.reuse  # level none, jobs tracked in cgroups
    look = 'echo "$PWD"; ls -A'
    assert await run(executor, "j1", look) == f"{executor.jobs_dir / 'j1.1'}\n"
    assert await run(executor, "j2", f"{look}; touch left; mkdir sub") == (
        f"{executor.jobs_dir / 'j2.1'}\n"
    )
    assert await run(executor, "j3", look) == f"{executor.jobs_dir / 'j3.1'}\n"  # not j2's
    assert list(executor.jobs_dir.iterdir()) == []
