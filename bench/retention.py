"""Retention benchmark: claims during a purge, and the database's size. Prints figures,
asserts nothing.

For each store: seed ``--jobs`` finished jobs that ended 40 to 70 days ago (each
with one attempt and ``--output-bytes`` of stdout) and ``--pending`` pending jobs,
straight into the database (faster than running them). Then, against the real
`corral server` over HTTP:
  1. with ``CORRAL_RETENTION=0`` (nothing to purge): claim throughput and the claim
     p50/p99 of 6 claimers (claim n=10, then one batched report) for ``--window`` s;
  2. restarted with ``CORRAL_RETENTION=30d``: the same, during the purge its first
     pass starts, then how long the whole purge took;
  3. the database's size before and after that purge, then over ``--cycles`` more
     rounds of as many finished jobs added and purged (in this process, at full
     speed): whether the freed space is reused instead of growing the file (on
     PostgreSQL each size after a purge is taken after a VACUUM, autovacuum's work
     done at once).

    .venv/bin/python bench/retention.py [--backend sqlite|postgres|all] [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import server  # noqa: E402
from bench.rawhttp import RawClient  # noqa: E402
from corral.domain.jobs import JobSpec, NewJob  # noqa: E402
from corral.store.base import Store  # noqa: E402
from corral.store.postgres.store import PostgresStore  # noqa: E402
from corral.store.sqlite.store import SqliteStore  # noqa: E402

DAY = 86400.0
PRUNED = re.compile(r'^corral_pruned_total\{kind="jobs"\} ([0-9.e+]+)$', re.M)
RECLAIMED = re.compile(r"^corral_reclaimed_bytes_total ([0-9.e+]+)$", re.M)
# Seed SQL: ``count`` jobs that ended 40 to 70 days ago, written as finished rows at
# once (``{numbers}``: 0..count-1 as column i), each with an attempt and its stdout.
FINISHED = (
    "INSERT INTO jobs (id, type, status, priority, runnable, labels, spec, owner_id, "
    "max_retries, lease_seconds, created_at, attempt, executor_id, started_at, finished_at, "
    "exit_code, stdout_size) SELECT '{prefix}' || i, 'bench', 'completed', 0, 2, {labels}, "
    '\'{{"type": "bench", "command": "true"}}\', \'bench\', 3, 60, '
    "{t} - 3456000 - i % 2592000, 1, 'seed', {t} - 3456000 - i % 2592000, "
    "{t} - 3456000 - i % 2592000, 0, {n} FROM {numbers}"
)
ATTEMPTS = (
    "INSERT INTO attempts (job_id, number, executor_id, claimed_at, ended_at, status, "
    "exit_code) SELECT id, 1, 'seed', finished_at, finished_at, 'completed', 0 FROM jobs "
    "WHERE id LIKE '{prefix}%'"
)
OUTPUT = (
    'INSERT INTO job_output (job_id, attempt, stream, "offset", data) '
    "SELECT id, 1, 'stdout', 0, {data} FROM jobs WHERE id LIKE '{prefix}%'"
)
SQLITE_NUMBERS = (
    "(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count}) "
    "SELECT i FROM n)"
)


@dataclass
class Claims:
    rate: float  # jobs/s
    p50: float  # ms per claim request
    p99: float


def new_jobs(prefix: str, count: int) -> list[NewJob]:
    spec = JobSpec(type="bench", command="true")
    now = time.time()
    return [NewJob(f"{prefix}-{i}", spec, 0, "bench", now) for i in range(count)]


async def insert(store: Store, prefix: str, count: int) -> None:
    for start in range(0, count, 5000):
        await store.insert_jobs(new_jobs(f"{prefix}{start}", min(5000, count - start)))


async def seed(store: Store, prefix: str, finished: int, pending: int, size: int) -> None:
    """``finished`` jobs as rows that ended long ago, ``pending`` through the store."""
    await store.open()
    try:
        sql = {"prefix": prefix, "t": time.time(), "n": size}
        if isinstance(store, SqliteStore):
            await store._writer.flush()
            numbers = SQLITE_NUMBERS.format(count=finished)
            conn = sqlite3.connect(store.path, isolation_level=None)
            try:
                conn.execute("BEGIN")
                conn.execute(FINISHED.format(**sql, labels="''", numbers=numbers))
                conn.execute(ATTEMPTS.format(**sql))
                conn.execute(OUTPUT.format(**sql, data=f"randomblob({size})"))
                conn.execute("COMMIT")
            finally:
                conn.close()
        else:
            assert isinstance(store, PostgresStore)
            numbers = f"generate_series(0, {finished - 1}) AS i"
            data = f"decode(substr(repeat(md5(id), {size // 16 + 1}), 1, {size * 2}), 'hex')"
            async with store._tx() as pg:
                await pg.execute(FINISHED.format(**sql, labels="NULL", numbers=numbers))
                await pg.execute(ATTEMPTS.format(**sql))
                await pg.execute(OUTPUT.format(**sql, data=data))
            await store._execute("ANALYZE")
        await insert(store, f"p{prefix}", pending)
    finally:
        await store.close()


async def purge_here(store: Store) -> None:
    """The same purge in this process, at full speed (no claims to make room for)."""
    from corral.services.metrics import Metrics
    from corral.services.retention import RetentionService

    await store.open()
    try:
        await RetentionService(store, Metrics(), 30 * DAY, pace=False).run_pass()
    finally:
        await store.close()


async def size_of(store: Store, vacuum: bool = False) -> int:
    await store.open()
    try:
        if vacuum and isinstance(store, PostgresStore):
            await store._execute("VACUUM")
        if isinstance(store, SqliteStore):
            return store.path.stat().st_size  # the store's close truncated the WAL
        return await store.database_size()
    finally:
        await store.close()


async def claims(url: str, token: str, window: float) -> Claims:
    """6 claimers, claim n=10 then one batched report, for ``window`` seconds."""
    done = 0
    times: list[float] = []
    stop = time.monotonic() + window

    async def claimer(idx: int) -> None:
        nonlocal done
        executor = f"bench-{idx}"
        async with RawClient(url, token) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                status, jobs = await http.request(
                    "POST", "/api/v1/jobs/claim", {"executor_id": executor, "n": 10}
                )
                times.append((time.perf_counter() - t0) * 1000)
                if status == 204:
                    return
                reports = [
                    {"job_id": j["id"], "executor_id": executor, "attempt": j["attempt"]}
                    | {"status": "completed", "exit_code": 0}
                    for j in jobs
                ]
                await http.request("POST", "/api/v1/jobs/results", reports)
                done += len(jobs)

    start = time.monotonic()
    await asyncio.gather(*(claimer(i) for i in range(6)))
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    return Claims(done / (time.monotonic() - start), statistics.median(times), p99)


async def pruned_jobs(http: httpx.AsyncClient) -> int:
    found = PRUNED.search((await http.get("/api/v1/metrics")).text)
    return int(float(found[1])) if found else 0


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def until_pruned(http: httpx.AsyncClient, at_least: int, pause: float) -> int:
    while True:
        count = await pruned_jobs(http)
        if count >= at_least:
            return count
        await asyncio.sleep(pause)


async def during_purge(url: str, token: str, total: int, window: float) -> tuple[Claims, float]:
    """Claims while the purge runs, then the purge's whole duration."""
    start = time.monotonic()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        await until_pruned(http, 1, 0.05)  # the first pass starts a second after start
        measured = await claims(url, token, window)
        if await pruned_jobs(http) >= total:
            print(f"  (the purge ended within the {window:.0f} s window: use more --jobs)")
        await until_pruned(http, total, 0.5)
        took = time.monotonic() - start
        await until_reclaimed(http)  # the pass goes on to give SQLite's pages back
    return measured, took


async def until_reclaimed(http: httpx.AsyncClient) -> None:
    """Until the bytes given back stay the same for two seconds."""
    seen = None
    while True:
        found = RECLAIMED.search((await http.get("/api/v1/metrics")).text)
        now = found[1] if found else None
        if now == seen:
            return
        seen = now
        await asyncio.sleep(2.0)


def mib(n: int) -> str:
    return f"{n / (1 << 20):,.1f} MiB"


async def run(name: str, dsn: str | None, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)

        def store() -> Store:
            return PostgresStore(dsn) if dsn else SqliteStore(data / "corral.sqlite3")

        t0 = time.monotonic()
        await seed(store(), "f", args.jobs, args.pending, args.output_bytes)
        print(
            f"[{name}] seeded {args.jobs:,} finished + {args.pending:,} pending jobs "
            f"in {time.monotonic() - t0:.0f} s"
        )
        before = await size_of(store())
        with environment(CORRAL_RETENTION="0"), server(data, dsn) as (url, token):
            await claims(url, token, 2.0)  # warm up: connections, caches, the planner
            base = await claims(url, token, args.window)
        print(
            f"[{name}] no purge: {base.rate:,.0f} jobs/s, claim p50 {base.p50:.2f} ms, "
            f"p99 {base.p99:.2f} ms (claim n=10 and one report, 6 claimers)"
        )
        with (
            environment(CORRAL_RETENTION="30d", CORRAL_RETENTION_INTERVAL="1"),
            server(data, dsn) as (url, token),
        ):
            busy, took = await during_purge(url, token, args.jobs, args.window)
        print(
            f"[{name}] during the purge: {busy.rate:,.0f} jobs/s ({busy.rate / base.rate:.2f}x), "
            f"claim p50 {busy.p50:.2f} ms ({busy.p50 / base.p50:.2f}x), p99 {busy.p99:.2f} ms"
        )
        print(
            f"[{name}] purge of {args.jobs:,} jobs: {took:.0f} s ({args.jobs / took:,.0f} "
            f"jobs/s, with claims at full speed for its first {args.window:.0f} s)"
        )
        sizes = [before, await size_of(store(), vacuum=True)]
        for cycle in range(args.cycles):  # as many jobs again, purged again
            await seed(store(), f"g{cycle}-", args.jobs, 0, args.output_bytes)
            sizes.append(await size_of(store()))
            await purge_here(store())
            sizes.append(await size_of(store(), vacuum=True))
        print(
            f"[{name}] database size, before and after each purge of {args.jobs:,} jobs: "
            + " -> ".join(mib(s) for s in sizes)
        )


def parser_of() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=200_000, help="finished jobs to purge")
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--output-bytes", type=int, default=256)
    parser.add_argument("--window", type=float, default=15.0, help="seconds of claims")
    parser.add_argument("--cycles", type=int, default=2, help="purges after the first")
    return parser


def options(jobs: int) -> argparse.Namespace:
    """The defaults with ``jobs`` finished jobs to purge: bench/dispatcher.py's purge part."""
    return parser_of().parse_args(["--jobs", str(jobs)])


def main() -> None:
    args = parser_of().parse_args()
    print(f"corral retention benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    if args.backend in ("sqlite", "all"):
        asyncio.run(run("sqlite", None, args))
    if args.backend in ("postgres", "all"):
        from tests.pg_server import PgServer

        pg = PgServer()
        pg.start()
        try:
            dsn = asyncio.run(pg.new_database(migrated=False))
            asyncio.run(run("postgres", dsn, args))
        finally:
            pg.stop()


if __name__ == "__main__":
    _ = asyncpg  # the PostgreSQL driver must be importable before a long seed
    main()
