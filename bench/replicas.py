"""Replicas benchmark: 1, 2 and 3 `corral server` replicas on one PostgreSQL; prints figures.

For each replica count, on a fresh database:
  1. claim(n=10) + batched results: jobs/s, with claimers spread evenly over the
     replicas (4 per replica, each on its own keep-alive connection);
  2. end to end: N `true` jobs submitted in bulk, run by two real `corral worker`s
     (--concurrency 8, --isolation none), each on its own replica, until all finished.
PostgreSQL runs with its durable defaults (fsync and synchronous commits on, unlike
the tests' throwaway server; ``--no-fsync`` keeps theirs, to see what the disk costs).
Beside each rate, per group of processes (the replicas summed, PostgreSQL's postmaster
and backends, the workers with their jobs, this client): the cores it kept busy, the
cores' worth of time it was runnable but waited for a core, and its CPU milliseconds
per job. Busy cores adding up to the machine's, or long waits, say the cores are the
limit; neither, and the time went to waiting on something else (the disk's fsync,
round trips). CPU per job moves little with the machine's load: the machine's cores
divided by the sum is the ceiling, whatever the number of replicas.

    .venv/bin/python bench/replicas.py [--replicas 1,2,3] [--jobs 10000] [--e2e-jobs 3000]
        [--no-fsync]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import UNTHROTTLED, cpu_seconds  # noqa: E402
from bench.rawhttp import RawClient  # noqa: E402
from bench.worker import mint, wait_until_done  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

CORRAL = [sys.executable, "-m", "corral.cli.main"]
CLAIMERS_PER_REPLICA = 4


def children_of(pid: int) -> list[int]:
    """``pid`` and its direct children (PostgreSQL's backends are the postmaster's)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(stat[1]) == pid:
                    found.append(int(entry.name))
    return found


def cpu_with_children(pid: int) -> float:
    """User + system CPU of a process and of its children that ended (a worker's jobs)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def waited_seconds(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


class CpuMeter:
    """Per named group of processes, between ``start`` and ``stop``: the cores it kept
    busy (CPU seconds / wall seconds) and the cores' worth of time it spent runnable
    yet waiting for one (the kernel's run delay): a group that waits much is held back
    by the cores, whoever uses them (on a shared machine, often someone else)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.with_children: set[str] = set()  # groups whose ended children count too
        self.before: dict[str, tuple[float, float]] = {}
        self.wall = 0.0

    def _now(self) -> dict[str, tuple[float, float]]:
        totals = {}
        for name, pids in self.groups.items():
            cpu = waited = 0.0
            measure = cpu_with_children if name in self.with_children else cpu_seconds
            for pid in pids():
                with contextlib.suppress(OSError):
                    cpu += measure(pid)
                    waited += waited_seconds(pid)
            totals[name] = (cpu, waited)
        return totals

    def start(self) -> None:
        self.before, self.wall = self._now(), time.perf_counter()

    def stop(self, jobs: int) -> str:
        """Cores busy / cores' worth waiting per group, and CPU ms per job per group."""
        after, wall = self._now(), time.perf_counter() - self.wall
        parts, busy_total, cpu_total = [], 0.0, 0.0
        for name, (cpu, waited) in after.items():
            cpu0, waited0 = self.before.get(name, (0.0, 0.0))
            busy, waiting = (cpu - cpu0) / wall, (waited - waited0) / wall
            busy_total, cpu_total = busy_total + busy, cpu_total + cpu - cpu0
            per_job = (cpu - cpu0) * 1000 / max(1, jobs)
            parts.append(f"{name} {busy:.2f}/{waiting:.2f} ({per_job:.2f} ms/job)")
        return (
            f"cores busy/waiting: {', '.join(parts)}; busy in all {busy_total:.2f} of "
            f"{os.cpu_count()}, {cpu_total * 1000 / max(1, jobs):.2f} ms CPU per job, "
            f"load {os.getloadavg()[0]:.1f}"
        )


@contextlib.contextmanager
def replicas(root: Path, dsn: str, count: int) -> Iterator[tuple[list[str], list[int], str]]:
    """``count`` replicas on ``dsn``; yields their URLs, their pids and the admin token."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    env = {**os.environ, **UNTHROTTLED}
    try:
        for i in range(count):
            port = free_port()
            data = root / f"replica-{i}"
            argv = [*CORRAL, "server", "--port", str(port), "--data-dir", str(data)]
            argv += ["--database-url", dsn, "--log-level", "warning"]
            procs.append(subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL))
            urls.append(f"http://127.0.0.1:{port}")
            wait_healthy(urls[-1], procs[-1])
        yield urls, [p.pid for p in procs], (root / "replica-0" / "admin-token").read_text().strip()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica at {url} exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"replica at {url} did not start")


def fill(url: str, admin: str, count: int) -> None:
    body = [{"type": "bench", "command": "true", "priority": "background"}] * 1000
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=120) as h:
        for _ in range(count // 1000):
            h.post("/api/v1/jobs/bulk", json=body).raise_for_status()


async def drain(urls: list[str], token: str, total: int) -> int:
    """Claim n=10 and report each batch in one request, until the queue is empty."""
    done = 0

    async def claimer(url: str, name: str) -> None:
        nonlocal done
        async with RawClient(url, token) as http:
            while done < total:
                status, jobs = await http.request(
                    "POST", "/api/v1/jobs/claim", {"executor_id": name, "n": 10}
                )
                if status == 204:
                    return
                reports = [
                    {
                        "job_id": j["id"],
                        "executor_id": name,
                        "attempt": j["attempt"],
                        "status": "completed",
                        "exit_code": 0,
                    }
                    for j in jobs
                ]
                await http.request("POST", "/api/v1/jobs/results", reports)
                done += len(jobs)

    claimers = [
        claimer(url, f"bench-{i}-{k}")
        for i, url in enumerate(urls)
        for k in range(CLAIMERS_PER_REPLICA)
    ]
    await asyncio.gather(*claimers)
    return done


@contextlib.contextmanager
def workers(urls: list[str], token: str, root: Path) -> Iterator[list[int]]:
    procs = []
    env = {**os.environ, "CORRAL_LOG_LEVEL": "warning", "CORRAL_TOKEN": token}
    try:
        for k in range(2):
            argv = [*CORRAL, "worker", "--server", urls[k % len(urls)], "--name", f"w{k}"]
            argv += ["--concurrency", "8", "--isolation", "none", "--work-dir", str(root / f"w{k}")]
            procs.append(subprocess.Popen(argv, env=env, stderr=subprocess.DEVNULL))
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(60)


def run(pg: PgServer, count: int, jobs: int, e2e_jobs: int) -> None:
    postmaster = int((pg.data / "postmaster.pid").read_text().split()[0])
    with tempfile.TemporaryDirectory() as tmp:
        dsn = asyncio.run(pg.new_database(migrated=False))
        with replicas(Path(tmp), dsn, count) as (urls, pids, admin):
            worker_token = mint(urls[0], admin, "worker")
            fill(urls[0], admin, jobs)
            meter = CpuMeter(
                {
                    "replicas": lambda: pids,
                    "postgres": lambda: children_of(postmaster),
                    "client": lambda: [os.getpid()],
                }
            )
            meter.start()
            started = time.perf_counter()
            done = asyncio.run(drain(urls, worker_token, jobs))
            rate = done / (time.perf_counter() - started)
            print(
                f"[{count} replica(s)] claim(n=10) + batched results: {rate:,.0f} jobs/s "
                f"({CLAIMERS_PER_REPLICA * count} claimers; {meter.stop(done)})"
            )
            with workers(urls, worker_token, Path(tmp)) as worker_pids:
                meter.groups["workers"] = lambda: worker_pids
                meter.with_children.add("workers")  # the jobs' own processes too
                with httpx.Client(
                    base_url=urls[-1], timeout=120, headers={"Authorization": f"Bearer {admin}"}
                ) as http:
                    while len(http.get("/api/v1/executors").json()) < 2:
                        time.sleep(0.1)
                    meter.start()
                    started = time.perf_counter()
                    fill(urls[-1], admin, e2e_jobs)
                    wait_until_done(http, jobs + e2e_jobs)
                    rate = e2e_jobs / (time.perf_counter() - started)
                    print(
                        f"[{count} replica(s)] end to end, {e2e_jobs:,} `true` jobs, 2 workers "
                        f"x 8: {rate:,.0f} jobs/s ({meter.stop(e2e_jobs)})"
                    )
        asyncio.run(pg.drop_database(dsn))


def durable(pg: PgServer) -> None:
    """Restart the test server with PostgreSQL's own defaults (fsync, synchronous
    commits, full page writes): the tests turn them off for speed; a deployment
    keeps them, and so does this benchmark."""
    assert pg.root is not None
    pg._run("pg_ctl", "-D", str(pg.data), "-m", "fast", "-w", "stop")
    options = (
        f"-p {pg.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={pg.root} "
        "-c max_connections=200"
    )
    log = str(pg.root / "server.log")
    pg._run("pg_ctl", "-D", str(pg.data), "-l", log, "-w", "-o", options, "start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--e2e-jobs", type=int, default=3_000)
    parser.add_argument(
        "--no-fsync", action="store_true", help="keep the tests' fsync=off: is the disk the limit?"
    )
    args = parser.parse_args()
    print(
        f"corral replicas benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    pg = PgServer()
    pg.start()
    try:
        if not args.no_fsync:
            durable(pg)
        for count in (int(n) for n in args.replicas.split(",")):
            run(pg, count, args.jobs, args.e2e_jobs)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
