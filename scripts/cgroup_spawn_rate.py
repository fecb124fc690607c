"""Jobs/s of ``true`` through the executor with and without each job's cgroup.

A figure, not a test: ``PYTHONPATH=src .venv/bin/python scripts/cgroup_spawn_rate.py``
(as root). Runs N jobs, ``concurrency`` at a time, for: no cgroup; a cgroup that only
tracks and kills (every job, whatever it asks); and one with memory + pids limits.
Then the spawn alone (``subprocess.run`` of ``/bin/sh -c true``, less noisy on a busy
machine): bare, with the join written into the job's shell, and with the exec'd prefix.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from corral.agent.binaries import BinaryCache
from corral.agent.cgroup_detect import detect
from corral.agent.cgroups import LimitPolicy, Resources, worker_key
from corral.agent.executor import Execution, JobRun
from corral.agent.output import OutputForwarder
from corral.agent.spool import Chunk
from corral.agent.workdir import Executor


class Discard:
    async def send(self, chunk: Chunk) -> bool:
        return False


async def rate(limits: LimitPolicy | None, resources: Resources | None, n: int, conc: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        async with httpx.AsyncClient() as http:
            executor = Executor(Path(tmp) / "w", BinaryCache(Path(tmp) / "b", http), limits=limits)
            slots = asyncio.Semaphore(conc)

            async def one(i: int) -> None:
                async with slots:
                    job = JobRun(f"j{i}", 1, _spec(), resources=resources)
                    result = await Execution(executor, job, OutputForwarder(Discard())).run()
                    assert result.exit_code == 0, result

            begun = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            elapsed = time.perf_counter() - begun
            executor.close()
    return n / elapsed


def _spec():  # type: ignore[no-untyped-def]
    from corral.domain.jobs import JobSpec

    return JobSpec(command="true")


def spawn_ms(argv: list[str], n: int) -> float:
    begun = time.perf_counter()
    for _ in range(n):
        subprocess.run(argv, check=True)
    return (time.perf_counter() - begun) / n * 1000


def spawns(n: int) -> None:
    cgroups = detect(worker_key(Path(tempfile.gettempdir()) / "spawn-rate"))
    group = cgroups.job("probe", Resources())
    job = ["/bin/sh", "-c", "true"]
    try:
        for name, argv in (
            ("bare /bin/sh -c true", job),
            ("join inside the job's shell", group.wrap(job, "true")),
            ("join by an exec'd /bin/sh prefix", [*group.argv_prefix(), *job]),
        ):
            print(f"spawn  {name:<34} {spawn_ms(argv, n):6.2f} ms")  # noqa: T201
    finally:
        group.remove()
        cgroups.close()


async def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    cases = [
        ("no cgroup", None, None),
        ("cgroup (track + kill)", LimitPolicy(), None),
        ("cgroup + memory + pids", LimitPolicy(), Resources(memory_mb=512, pids=100)),
    ]
    for conc in (1, 8):
        for name, limits, resources in cases:
            per_s = await rate(limits, resources, n, conc)
            print(f"concurrency {conc:>2}  {name:<24} {per_s:7.0f} jobs/s")  # noqa: T201
    spawns(n)


asyncio.run(main())
