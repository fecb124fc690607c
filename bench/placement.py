"""Placement benchmark: the cost of a claim(n=10) in the store, plain jobs against
jobs that ask for resources (issue 12). Prints figures, asserts nothing.

Plain jobs take the ordinary one-statement claim (plus one probe of the empty
``jobs_placed`` index); jobs with ``resources`` take the placement path (free
capacity read, running totals, and on PostgreSQL the executor row locked first).

    .venv/bin/python bench/placement.py [--backend sqlite|postgres|all] [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corral.domain.jobs import NewJob, Resources  # noqa: E402
from corral.domain.workers import ExecutorInfo  # noqa: E402
from corral.store.base import Store  # noqa: E402
from corral.store.postgres.store import PostgresStore  # noqa: E402
from corral.store.sqlite.store import SqliteStore  # noqa: E402
from tests.contract.contract_support import claim_request, new_job  # noqa: E402

ROUNDS = 7
CLAIMS_PER_ROUND = 30


def jobs(prefix: str, count: int, resources: Resources | None) -> list[NewJob]:
    made = [new_job(f"{prefix}{i:07}") for i in range(count)]
    return [
        dataclasses.replace(j, spec=dataclasses.replace(j.spec, resources=resources)) for j in made
    ]


async def claim_ms(store: Store) -> float:
    """Median over rounds of the mean time of one claim(n=10), in milliseconds."""
    rounds = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CLAIMS_PER_ROUND):
            await store.claim(claim_request("bench", limit=10), None)
        rounds.append((time.perf_counter() - start) / CLAIMS_PER_ROUND * 1000)
    return statistics.median(rounds)


async def measure(name: str, store: Store, count: int) -> None:
    await store.open()
    try:
        offer = ExecutorInfo("bench", "worker-1", cpus=1e6, memory_mb=1 << 30)
        await store.upsert_executor(offer, time.time(), draining=False)
        await store.insert_jobs(jobs("plain-", count, None))
        plain = await claim_ms(store)
        # Another executor takes the rest of the plain jobs, so the next figure sees
        # placed ones only and the measured executor holds no more than it claimed.
        while await store.claim(claim_request("sink", limit=100), None):
            pass
        await store.insert_jobs(jobs("placed-", count, Resources(cpus=0.001, memory_mb=1)))
        placed = await claim_ms(store)
        print(
            f"[{name}] claim(n=10), {count:,} pending: plain jobs {plain:.2f} ms, "
            f"jobs with resources {placed:.2f} ms"
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    if args.backend in ("sqlite", "all"):
        path = Path(tempfile.mkdtemp()) / "corral.db"
        asyncio.run(measure("sqlite", SqliteStore(path), args.jobs))
    if args.backend in ("postgres", "all"):
        from tests.pg_server import PgServer

        pg = PgServer()
        pg.start()
        try:
            dsn = asyncio.run(pg.new_database())
            asyncio.run(measure("postgres", PostgresStore(dsn), args.jobs))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
