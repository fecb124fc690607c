"""The store's claim and report in process, without HTTP: prints figures, asserts nothing.

What a claim and a worker's report cost the store itself, on SQLite and PostgreSQL:
bulk insert (us per job), then cycles of claim(n=10) and one plain report per job
(PostgreSQL's one-statement finish), with 100 jobs pending and with 100,000, the
queue topped up after each cycle (untimed). Wall times are medians of 300 cycles;
on SQLite the process's CPU is the store's whole cost, on PostgreSQL the database
server's share is in the wall time. ``--keys`` also puts half the jobs under 100
concurrency keys (limit 2). Run it from two checkouts to compare them:

    PYTHONPATH=src .venv/bin/python bench/store_claims.py [--backend sqlite|postgres|all] [--keys]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from corral.domain.jobs import AttemptRef, ClaimRequest, JobSpec, NewJob, Outcome
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CYCLES = 300
DONE = Outcome(JobStatus.COMPLETED, exit_code=0)


def make(i: int, keys: bool) -> NewJob:
    spec: dict[str, Any] = {"command": "true"}
    if keys and i % 2 == 0:
        spec |= {"concurrency_key": f"bench-{i // 2 % 100}", "concurrency_limit": 2}
    return NewJob(str(uuid.uuid4()), JobSpec(**spec), 1, "bench-owner", time.time())


async def fill(store: Any, count: int, keys: bool, start: int = 0) -> float:
    """Seconds to insert ``count`` jobs, 1,000 per call."""
    t0 = time.perf_counter()
    for first in range(start, start + count, 1000):
        await store.insert_jobs(
            [make(i, keys) for i in range(first, min(first + 1000, start + count))]
        )
    return time.perf_counter() - t0


async def cycles(store: Any, keys: bool, made: int) -> tuple[float, float, float]:
    """Median ms of claim(n=10), of one report, and CPU ms per cycle."""
    claims, reports = [], []
    cpu = time.process_time()
    for n in range(CYCLES):
        t0 = time.perf_counter()
        jobs = await store.claim(ClaimRequest("bench-exec", "bench-worker", limit=10), None)
        claims.append(time.perf_counter() - t0)
        for job in jobs:
            t0 = time.perf_counter()
            await store.finish(
                job.id, AttemptRef("bench-exec", job.attempt), DONE, None, RetryPolicy()
            )
            reports.append(time.perf_counter() - t0)
        await store.insert_jobs([make(made + n * 10 + i, keys) for i in range(len(jobs))])
    cpu_ms = (time.process_time() - cpu) * 1000 / CYCLES
    return statistics.median(claims) * 1000, statistics.median(reports) * 1000, cpu_ms


async def run(name: str, open_store: Any, keys: bool) -> None:
    for depth in (100, 100_000):
        store = await open_store()
        try:
            took = await fill(store, depth, keys)
            await asyncio.sleep(5)  # let the inserts settle (PostgreSQL's ANALYZE)
            await cycles(store, keys, depth)  # warm up every pooled connection's plans
            claim, report, cpu = await cycles(store, keys, depth + CYCLES * 10)
        finally:
            await store.close()
        print(
            f"[{name}] {depth:,} pending{' (half keyed)' if keys else ''}: insert "
            f"{took * 1e6 / depth:.0f} us/job; claim(n=10) p50 {claim:.2f} ms; report p50 "
            f"{report:.2f} ms; process CPU {cpu:.2f} ms per cycle (1 claim + 10 reports)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--keys", action="store_true")
    args = parser.parse_args()
    if args.backend in ("sqlite", "all"):
        from corral.store.sqlite.store import SqliteStore

        with tempfile.TemporaryDirectory() as tmp:
            counter = iter(range(100))

            async def open_sqlite() -> Any:
                store = SqliteStore(Path(tmp) / f"bench-{next(counter)}.db")
                await store.open()
                return store

            asyncio.run(run("sqlite", open_sqlite, args.keys))
    if args.backend in ("postgres", "all"):
        from corral.store.postgres.store import PostgresStore
        from tests.pg_server import PgServer

        pg = PgServer()
        pg.start()
        try:

            async def open_postgres() -> Any:
                store = PostgresStore(await pg.new_database(migrated=False))
                await store.open()
                return store

            asyncio.run(run("postgres", open_postgres, args.keys))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
