"""What a rate-limit check costs per request: in memory (SQLite) and shared (PostgreSQL).

Prints, for each way of counting, the time one request's check takes (mean over
many, one principal, in one process with no HTTP around it) and how many database
round trips a thousand requests made. The shared way is measured on a throwaway
PostgreSQL, started the way the tests start theirs, with two "replicas" (two
connection pools) taking turns, as requests spread by a balancer would.

    .venv/bin/python bench/rate_limits.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any, cast

from limits import RateLimitItem, parse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corral.services.allowances import SharedCounting  # noqa: E402
from corral.services.counting import Counting, LocalCounting  # noqa: E402
from corral.store.base import Store  # noqa: E402
from corral.store.postgres.store import PostgresStore  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

RATES = ("6000/minute", "1000000/minute")  # the default per principal; a generous one


class Trips:
    """A real store, its rate-limit round trips counted."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.count = 0

    async def add_to_window(self, *args: Any) -> int:
        self.count += 1
        return await self._store.add_to_window(*args)

    async def window_count(self, *args: Any) -> int:
        self.count += 1
        return await self._store.window_count(*args)


def admitted(rate: RateLimitItem, requests: int) -> int:
    """Requests to send: nine tenths of the budget at most, so every one is admitted
    (a refusal costs less: a replica that found the window spent asks nothing)."""
    return min(requests, rate.amount * 9 // 10)


async def per_request(replicas: list[Counting], rate: RateLimitItem, requests: int) -> float:
    """Mean microseconds per check, the replicas taking turns."""
    start = time.perf_counter()
    for i in range(requests):
        await replicas[i % len(replicas)].hit(rate, "principal", "bench")
    return (time.perf_counter() - start) * 1e6 / requests


async def shared(dsn: str, requests: int) -> None:
    stores = [PostgresStore(dsn), PostgresStore(dsn)]
    for store in stores:
        await store.open()
    try:
        for text in RATES:
            trips = [Trips(store) for store in stores]
            counting: list[Counting] = [SharedCounting(cast(Store, t)) for t in trips]
            n = admitted(parse(text), requests)
            micros = await per_request(counting, parse(text), n)
            made = sum(t.count for t in trips)
            print(
                f"shared (PostgreSQL, 2 replicas), {text}, {n:,} requests: {micros:.1f} us "
                f"per request, {made} round trips ({made * 1000 / n:.1f} per 1,000 requests)"
            )
    finally:
        for store in stores:
            await store.close()


async def local(requests: int) -> None:
    for text in RATES:
        n = admitted(parse(text), requests)
        micros = await per_request([LocalCounting()], parse(text), n)
        print(f"in memory (limits), {text}, {n:,} requests: {micros:.1f} us per request")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    asyncio.run(local(args.requests))
    pg = PgServer()
    pg.start()
    try:
        dsn = asyncio.run(pg.new_database())
        asyncio.run(shared(dsn, args.requests))
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
