"""End-to-end benchmark: real `corral server` + one real `corral worker`; prints figures.

1. the raw spawn rate of /bin/true from Python here (the physical ceiling),
   sequential and with both cores;
2. end-to-end throughput of N `true` jobs through dispatcher + one worker
   (--concurrency 8), submitted in bulk, on SQLite and on PostgreSQL;
3. submit-to-start latency for single jobs on an idle worker: from just
   before the submit request to the moment the job's own process reads the
   clock (`date +%s.%N`);
4. the CPU one job costs the server, the worker and its own processes (`/bin/sh`
   with the cgroup join, `true`): user + system time over the run of 2, per job.
2 to 4 run once per isolation level asked for (`--isolation none,user,sandbox`,
the default, as root; docs/isolation.md), each beside the others.

  .venv/bin/python bench/worker.py [--jobs 5000] [--backend sqlite|postgres|all]
      [--isolation none,user,sandbox]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import dispatcher  # noqa: E402
from bench.dispatcher import SERVER_PIDS, cpu_seconds, server  # noqa: E402


def spawn_true(count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        subprocess.run(["/bin/true"], check=True)
    return count / (time.perf_counter() - start)


def raw_spawn_rates(count: int = 2000) -> tuple[float, float]:
    sequential = spawn_true(count)
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(spawn_true, [count // cores] * cores))
    parallel = (count // cores * cores) / (time.perf_counter() - start)
    return sequential, parallel


def own_and_children_cpu(pid: int) -> tuple[float, float]:
    """User + system CPU of process ``pid`` itself, and of its reaped children (the jobs'
    own processes, for a worker), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


@contextlib.contextmanager
def worker(
    url: str, token: str, work_dir: Path, concurrency: int, isolation: str
) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [
        *dispatcher.CORRAL,
        "worker",
        "--server",
        url,
        "--token",
        token,
        "--concurrency",
        str(concurrency),
        "--work-dir",
        str(work_dir),
        "--isolation",
        isolation,
    ]
    env = {**os.environ, "CORRAL_LOG_LEVEL": "warning"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def mint(url: str, admin: str, role: str) -> str:
    answer = httpx.post(
        f"{url}/api/v1/admin/tokens",
        json={"role": role, "name": "bench"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    answer.raise_for_status()
    token: str = answer.json()["token"]
    return token


def wait_for_worker(http: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if http.get("/api/v1/executors").json():
            return
        time.sleep(0.05)
    raise RuntimeError("worker did not register")


def wait_until_done(http: httpx.Client, total: int, timeout: float = 600) -> None:
    """Poll the job counts, rarely: each poll costs the server a count over every job,
    and a poll every few milliseconds would load the very server being measured. The
    next poll is due about when the rate seen so far says the last job finishes (at
    least 10 ms, at most 250 ms later), so the wait overshoots the end by little."""
    start = time.monotonic()
    deadline = start + timeout
    while time.monotonic() < deadline:
        stats = http.get("/api/v1/admin/stats").json()["jobs_by_status"]
        finished = stats["completed"] + stats["failed"] + stats["cancelled"]
        if finished >= total:
            if stats["failed"]:
                print(f"  ({stats['failed']} jobs failed)")
            return
        elapsed = time.monotonic() - start
        rate = finished / elapsed if finished else 0.0
        left = (total - finished) / rate if rate else 0.25
        time.sleep(min(0.25, max(0.01, left / 2)))
    raise RuntimeError("jobs did not finish in time")


def throughput(http: httpx.Client, jobs: int) -> float:
    body = [{"command": "true", "type": "bench"}] * 1000
    start = time.perf_counter()
    for _ in range(jobs // 1000):
        http.post("/api/v1/jobs/bulk", json=body).raise_for_status()
    wait_until_done(http, jobs // 1000 * 1000)
    return jobs // 1000 * 1000 / (time.perf_counter() - start)


def await_stdout(http: httpx.Client, job_id: str) -> str:
    """The job's stdout, read from its output stream (Server-Sent Events) as the server
    pushes it: one request that waits, as Celery's ``result.get()`` waits on Redis
    pub/sub, rather than polling the job and loading the server being measured."""
    out = []
    with http.stream("GET", f"/api/v1/jobs/{job_id}/output/follow") as events:
        event = ""
        for line in events.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "output":
                data = json.loads(line[6:])
                if data["stream"] == "stdout":
                    out.append(data["data"])
            elif line.startswith("data: ") and event == "end":
                break
    return "".join(out)


def latency(http: httpx.Client, samples: int) -> tuple[float, float]:
    waits = []
    for _ in range(samples):
        t0 = time.time()
        job_id = http.post("/api/v1/jobs", json={"command": "date +%s.%N"}).json()["id"]
        started = float(await_stdout(http, job_id).strip())
        waits.append((started - t0) * 1000)
        time.sleep(0.02)  # let the worker go idle again
    waits.sort()
    return statistics.median(waits), waits[max(0, int(len(waits) * 0.99) - 1)]


def run_backend(
    name: str, database_url: str | None, jobs: int, spawn: float, isolation: str
) -> None:
    name = f"{name}, isolation {isolation}"
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), database_url) as (url, admin):
        token = mint(url, admin, "worker")
        with (
            worker(url, token, Path(tmp) / "work", 8, isolation) as proc,
            httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=60
            ) as http,
        ):
            wait_for_worker(http)
            before, served = own_and_children_cpu(proc.pid), cpu_seconds(SERVER_PIDS[url])
            rate = throughput(http, jobs)
            after, serving = own_and_children_cpu(proc.pid), cpu_seconds(SERVER_PIDS[url]) - served
            print(
                f"[{name}] end to end, {jobs:,} `true` jobs, one worker --concurrency 8: "
                f"{rate:,.0f} jobs/s ({rate / spawn:.0%} of the sequential spawn rate)"
            )
            own, kids = ((a - b) / jobs * 1000 for a, b in zip(after, before, strict=True))
            print(
                f"[{name}] CPU per job: server {serving / jobs * 1000:.2f} ms, worker "
                f"{own:.2f} ms, the job's own processes {kids:.2f} ms"
            )
            p50, p99 = latency(http, 100)
            print(f"[{name}] submit-to-start on an idle worker: p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--isolation", default="none,user,sandbox")
    args = parser.parse_args()
    levels = args.isolation.split(",")
    print(f"corral worker benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    sequential, parallel = raw_spawn_rates()
    print(
        f"raw spawn of /bin/true from Python: {sequential:,.0f}/s sequential, "
        f"{parallel:,.0f}/s on all cores"
    )
    if args.backend in ("sqlite", "all"):
        for level in levels:
            run_backend("sqlite", None, args.jobs, sequential, level)
    if args.backend in ("postgres", "all"):
        from tests.pg_server import PgServer

        pg = PgServer()
        pg.start()
        try:
            dsn = asyncio.run(pg.new_database(migrated=False))
            for level in levels:
                run_backend("postgres", dsn, args.jobs, sequential, level)
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
