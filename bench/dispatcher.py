"""Dispatcher benchmark: prints figures, asserts nothing.

Runs the real `corral server` as a subprocess (uvloop + httptools, as users run
it) and measures over HTTP on 127.0.0.1:
  1. bulk submit throughput (jobs/s, 1,000 jobs per request);
  2. claim(n=10) + complete cycles (jobs/s), results reported in one batched
     request per claim, and one request per job;
  3. claim latency p50/p99 and claim throughput with 100 pending jobs vs 100,000,
     without and with concurrency keys in the queue (``bench/queue_depth.py``);
  4. claims during the purge of ``--purge-jobs`` finished jobs, and the database's
     size before and after (``bench/retention.py``; ``--purge-jobs 1000000`` gives
     the figures of docs/flow-control.md).
On SQLite and, when PostgreSQL's binaries are present, on PostgreSQL. Beside each
rate, the server's CPU time per request (user + system, from /proc): on a machine
shared with other work, rates swing with the load, the CPU a request costs much less.

    .venv/bin/python bench/dispatcher.py [--backend sqlite|postgres|all] [--jobs N]
        [--part all|throughput|depth|purge] [--no-keys] [--settle SECONDS] [--rate-limits]
        [--purge-jobs N]

``--rate-limits`` counts every request against budgets too large to refuse any
(``COUNTED``), so the figures include what the rate limits cost per request: in
memory on SQLite, in the shared counters every replica reaches on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import queue_depth  # noqa: E402
from bench.rawhttp import RawClient  # noqa: E402
from tests.live import free_port  # noqa: E402

SHA = "a" * 64
# The benchmarks measure the dispatcher, not its rate limits: every limit off.
UNTHROTTLED = {
    "CORRAL_RATE_LIMIT": "off",
    "CORRAL_WORKER_RATE_LIMIT": "off",
    "CORRAL_AUTH_FAILURE_RATE_LIMIT": "off",
    "CORRAL_LOGIN_RATE_LIMIT": "off",
}
# ``--rate-limits``: every request counted, none refused (16,667 a second per principal).
COUNTED = {
    **UNTHROTTLED,
    "CORRAL_RATE_LIMIT": "1000000/minute",
    "CORRAL_WORKER_RATE_LIMIT": "1000000/minute",
}
SERVER_ENV = dict(UNTHROTTLED)  # what ``server`` adds to the environment; see ``main``


# How the benchmarks start ``corral`` (server and worker); bench/latency_steps.py puts
# bench/stamps.py in its place to see when each step of a job's path happens.
CORRAL = [sys.executable, "-m", "corral.cli.main"]
SERVER_PIDS: dict[str, int] = {}  # url -> pid of the server started by ``server``
ARGS: dict[str, Any] = {}  # the command line, once ``run_benchmark`` parsed it


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def job(i: int) -> dict[str, object]:
    return {"type": "bench", "command": "true", "priority": "background"}


@contextlib.contextmanager
def server(data_dir: Path, database_url: str | None) -> Iterator[tuple[str, str]]:
    port = free_port()
    cmd = [
        *CORRAL,
        "server",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--log-level",
        "warning",
    ]
    if database_url:
        cmd += ["--database-url", database_url]
    env = {**os.environ, **SERVER_ENV}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS[url] = proc.pid
    deadline = time.monotonic() + 30
    token_file = data_dir / "admin-token"
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health").status_code == 200 and token_file.exists():
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    try:
        yield url, token_file.read_text().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def bulk_submit(http: httpx.AsyncClient, total: int, batch: int = 1000) -> float:
    body = [job(i) for i in range(batch)]
    start = time.perf_counter()
    sent = 0

    async def one() -> None:
        r = await http.post("/api/v1/jobs/bulk", json=body)
        r.raise_for_status()

    while sent < total:
        await asyncio.gather(*(one() for _ in range(2)))
        sent += 2 * batch
    return sent / (time.perf_counter() - start)


async def _drain_part(url: str, token: str, total: int, batched: bool, tag: str) -> tuple[int, int]:
    """One client process: claim n=10 and complete until the queue is empty; returns the
    jobs done and the requests sent. Each claimer has its own connection (``RawClient``:
    httpx would cost more CPU per request than the server it measures)."""
    done = requests = 0

    async def worker(idx: int) -> None:
        nonlocal done, requests
        executor = f"bench-{tag}-{idx}"
        async with RawClient(url, token) as http:
            while done < total:
                claim = {"executor_id": executor, "n": 10}
                status, jobs = await http.request("POST", "/api/v1/jobs/claim", claim)
                requests += 1
                if status == 204:
                    return
                if batched:
                    reports = [
                        {
                            "job_id": j["id"],
                            "executor_id": executor,
                            "attempt": j["attempt"],
                            "status": "completed",
                            "exit_code": 0,
                        }
                        for j in jobs
                    ]
                    await http.request("POST", "/api/v1/jobs/results", reports)
                    requests += 1
                else:
                    for j in jobs:
                        body = {"executor_id": executor, "attempt": j["attempt"], "exit_code": 0}
                        await http.request("PUT", f"/api/v1/jobs/{j['id']}/complete", body)
                        requests += 1
                done += len(jobs)

    await asyncio.gather(*(worker(i) for i in range(6)))
    return done, requests


def drain(url: str, token: str, total: int, batched: bool) -> tuple[float, float]:
    """One client process with several concurrent claimers, as one worker agent would be:
    jobs/s, and the server's CPU milliseconds per request meanwhile.

    (More client processes only steal the server's CPU on a 2-core machine.)
    """
    pid = SERVER_PIDS[url]
    start, cpu = time.perf_counter(), cpu_seconds(pid)
    done, requests = asyncio.run(_drain_part(url, token, total, batched, "0"))
    rate = done / (time.perf_counter() - start)
    return rate, (cpu_seconds(pid) - cpu) * 1000 / max(1, requests)


async def claim_latency(url: str, token: str, samples: int) -> tuple[float, float]:
    """Latency of single claims (each followed by an untimed complete), in ms."""
    times = []
    async with RawClient(url, token) as http:
        for _ in range(samples):
            t0 = time.perf_counter()
            _, jobs = await http.request(
                "POST", "/api/v1/jobs/claim", {"executor_id": "lat", "n": 1}
            )
            times.append((time.perf_counter() - t0) * 1000)
            body = {"executor_id": "lat", "attempt": jobs[0]["attempt"], "exit_code": 0}
            await http.request("PUT", f"/api/v1/jobs/{jobs[0]['id']}/complete", body)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


async def fill(http: httpx.AsyncClient, count: int) -> None:
    while count > 0:
        n = min(count, 5000)
        (await http.post("/api/v1/jobs/bulk", json=[job(i) for i in range(n)])).raise_for_status()
        count -= n


async def run_backend(name: str, database_url: str | None, jobs: int) -> None:
    if ARGS.get("part", "all") in ("all", "throughput"):
        await throughput(name, database_url, jobs)
    if ARGS.get("part", "all") in ("all", "depth"):
        # Claims with 100 and 100,000 pending, with and without concurrency keys: two
        # servers side by side per variant (bench/queue_depth.py).
        await queue_depth.run(
            name, database_url, server, keys=not ARGS.get("no_keys"), settle=ARGS["settle"]
        )
    if ARGS.get("part", "all") in ("all", "purge"):
        from bench import retention  # imports this module: loaded once it is

        await retention.run(name, database_url, retention.options(ARGS["purge_jobs"]))


async def throughput(name: str, database_url: str | None, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), database_url) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, limits=limits, timeout=60
        ) as http:
            pid, cpu = SERVER_PIDS[url], cpu_seconds(SERVER_PIDS[url])
            rate = await bulk_submit(http, jobs)
            per_job = (cpu_seconds(pid) - cpu) * 1e6 / jobs
            print(
                f"[{name}] bulk submit: {rate:,.0f} jobs/s ({jobs:,} jobs, 1,000 per request; "
                f"server CPU {per_job:.0f} us per job)"
            )
            rate, ms = await asyncio.to_thread(drain, url, token, jobs, True)
            print(
                f"[{name}] claim(n=10) + batched results: {rate:,.0f} jobs/s "
                f"(server CPU {ms:.2f} ms per request)"
            )
            await fill(http, jobs // 2)
            rate, ms = await asyncio.to_thread(drain, url, token, jobs // 2, False)
            print(
                f"[{name}] claim(n=10) + one complete per job: {rate:,.0f} jobs/s "
                f"(server CPU {ms:.2f} ms per request)"
            )


Backend = Callable[[str, str | None, int], Coroutine[Any, Any, None]]


def run_benchmark(title: str, run: Backend, default_jobs: int) -> None:
    """Parse ``--backend``/``--jobs`` and run ``run`` on SQLite, then on a throwaway
    PostgreSQL started the way the tests start theirs."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=default_jobs)
    parser.add_argument("--part", choices=["all", "throughput", "depth", "purge"], default="all")
    parser.add_argument("--no-keys", action="store_true", help="depth: no concurrency keys")
    parser.add_argument("--purge-jobs", type=int, default=200_000, help="purge: finished jobs")
    parser.add_argument(
        "--settle",
        type=float,
        default=queue_depth.SETTLE_SECONDS,
        help="depth: seconds the servers idle after the inserts (0: claims right after)",
    )
    parser.add_argument(
        "--rate-limits", action="store_true", help="count requests against huge budgets"
    )
    args = parser.parse_args()
    ARGS.update(vars(args))
    if args.rate_limits:
        SERVER_ENV.update(COUNTED)
        title += " (rate limits counted)"
    print(f"corral {title} benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if args.backend in ("sqlite", "all"):
        asyncio.run(run("sqlite", None, args.jobs))
    if args.backend in ("postgres", "all"):
        from tests.pg_server import PgServer

        pg = PgServer()
        pg.start()
        try:
            dsn = asyncio.run(pg.new_database(migrated=False))
            asyncio.run(run("postgres", dsn, args.jobs))
        finally:
            pg.stop()


def main() -> None:
    run_benchmark("dispatcher", run_backend, 20_000)


if __name__ == "__main__":
    if shutil.which("corral") is None and not (ROOT / ".venv/bin/corral").exists():
        print("run `make setup` first", file=sys.stderr)
    main()
