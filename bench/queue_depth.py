"""Claims against a shallow and a deep queue, side by side: part of ``bench/dispatcher.py``.

Two servers run at once, one with 100 jobs pending and one with 100,000, and the
samples alternate between them (a claim on one, then on the other, the order
swapped each round, a pause of 5 ms before each), so the load of a shared machine
weighs on both alike: the ratio of the two is the figure. Each
queue is kept at its depth by submitting one job for each one claimed. The same is
done again with concurrency keys in the queue: half the jobs carry one of 100 keys
(limit 2), so most of them are held back and the claim walks past none of them.

Printed per variant: claim latency p50/p99 (claim(n=1), each followed by an
untimed complete and refill) and claim(n=10) + batched results throughput,
draining 2,000 jobs in turns of 250 from each queue (each turn first adds the 250 it
drains). By default both only once the inserts have settled: the servers idle a few
seconds (PostgreSQL's statistics refresh after a bulk load, SQLite's checkpoint);
``--settle 0`` claims right after the inserts. Either way each server then warms up
with 50 claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.rawhttp import RawClient

SHALLOW, DEEP = 100, 100_000
KEYS, KEY_LIMIT = 100, 2
SETTLE_SECONDS = 8.0
Job = Callable[[int], dict[str, Any]]


def plain(i: int) -> dict[str, Any]:
    return {"type": "bench", "command": "true", "priority": "background"}


def half_keyed(i: int) -> dict[str, Any]:
    if i % 2:
        return plain(i)
    return {**plain(i), "concurrency_key": f"bench-{i // 2 % KEYS}", "concurrency_limit": KEY_LIMIT}


class Queue:
    """One server's queue, kept at its depth: claims, completes and refills."""

    def __init__(self, url: str, token: str, make: Job) -> None:
        self.url, self.token, self.make = url, token, make
        self.made = 0

    async def fill(self, count: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=120) as http:
            while count > 0:
                n = min(count, 5000)
                body = [self.make(self.made + i) for i in range(n)]
                (await http.post("/api/v1/jobs/bulk", json=body)).raise_for_status()
                self.made += n
                count -= n

    async def claim_once(self, http: RawClient) -> float:
        """ms of one claim(n=1); then its complete and one job to replace it, untimed."""
        t0 = time.perf_counter()
        _, jobs = await http.request("POST", "/api/v1/jobs/claim", {"executor_id": "lat", "n": 1})
        took = (time.perf_counter() - t0) * 1000
        body = {"executor_id": "lat", "attempt": jobs[0]["attempt"], "exit_code": 0}
        await http.request("PUT", f"/api/v1/jobs/{jobs[0]['id']}/complete", body)
        await http.request("POST", "/api/v1/jobs", self.make(self.made))
        self.made += 1
        return took

    async def drain(self, total: int) -> float:
        """Seconds for 6 claimers (claim n=10, one batched report each) to finish ``total``
        jobs added first (untimed), so the queue ends at its depth again."""
        await self.fill(total)
        done = 0

        async def claimer(idx: int) -> None:
            nonlocal done
            async with RawClient(self.url, self.token) as http:
                while done < total:
                    claim = {"executor_id": f"drain-{idx}", "n": 10}
                    status, jobs = await http.request("POST", "/api/v1/jobs/claim", claim)
                    if status == 204:
                        return
                    reports = [
                        {
                            "job_id": j["id"],
                            "executor_id": f"drain-{idx}",
                            "attempt": j["attempt"],
                            "status": "completed",
                            "exit_code": 0,
                        }
                        for j in jobs
                    ]
                    await http.request("POST", "/api/v1/jobs/results", reports)
                    done += len(jobs)

        t0 = time.perf_counter()
        await asyncio.gather(*(claimer(i) for i in range(6)))
        return time.perf_counter() - t0


async def compare(name: str, label: str, shallow: Queue, deep: Queue, settle: float) -> None:
    await asyncio.gather(shallow.fill(SHALLOW), deep.fill(DEEP))
    await asyncio.sleep(settle)
    times: dict[str, list[float]] = {"shallow": [], "deep": []}
    async with RawClient(shallow.url, shallow.token) as a, RawClient(deep.url, deep.token) as b:
        for _ in range(50):  # warm up, untimed
            await shallow.claim_once(a)
            await deep.claim_once(b)
        for n in range(300):
            # Which goes first alternates, and each waits for the other's after-work
            # (a finish's wake-up, the refill's commit) to end: on two cores the one
            # sampled right after the other would otherwise pay for it.
            for key in ("shallow", "deep") if n % 2 else ("deep", "shallow"):
                queue, http = (shallow, a) if key == "shallow" else (deep, b)
                await asyncio.sleep(0.005)
                times[key].append(await queue.claim_once(http))
    seconds = {"shallow": 0.0, "deep": 0.0}
    for _ in range(8):
        seconds["shallow"] += await shallow.drain(250)
        seconds["deep"] += await deep.drain(250)
    p50 = {k: statistics.median(v) for k, v in times.items()}
    p99 = {k: sorted(v)[int(len(v) * 0.99) - 1] for k, v in times.items()}
    for key, depth in (("shallow", SHALLOW), ("deep", DEEP)):
        print(
            f"[{name}] {label}, {depth:,} pending: claim p50 {p50[key]:.2f} ms, "
            f"p99 {p99[key]:.2f} ms; claim(n=10) + batched results "
            f"{2000 / seconds[key]:,.0f} jobs/s"
        )
    ratio = p50["deep"] / p50["shallow"]
    print(f"[{name}] {label}: p50 ratio, {DEEP:,} / {SHALLOW} pending: {ratio:.2f}x")


@contextlib.asynccontextmanager
async def sibling_database(dsn: str | None, suffix: str) -> AsyncIterator[str | None]:
    """A fresh database on the same PostgreSQL server as ``dsn`` (None: SQLite)."""
    if dsn is None:
        yield None
        return
    base, _, _ = dsn.rpartition("/")
    name = f"bench_{suffix}_{int(time.time() * 1000)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    yield f"{base}/{name}"


async def run(
    name: str,
    database_url: str | None,
    server: Any,
    keys: bool = True,
    settle: float = SETTLE_SECONDS,
) -> None:
    """``server(data_dir, database_url)`` is ``bench.dispatcher.server``; ``settle``:
    seconds the servers idle between the inserts and the first claim."""
    variants: list[tuple[str, Job]] = [("no concurrency keys", plain)]
    if keys:
        variants.append(
            (f"half the jobs under {KEYS} concurrency keys (limit {KEY_LIMIT})", half_keyed)
        )
    for n, (label, make) in enumerate(variants):
        async with (
            sibling_database(database_url, f"s{n}") as shallow_db,
            sibling_database(database_url, f"d{n}") as deep_db,
        ):
            with (
                tempfile.TemporaryDirectory() as one,
                tempfile.TemporaryDirectory() as two,
                server(Path(one), shallow_db) as (url_a, token_a),
                server(Path(two), deep_db) as (url_b, token_b),
            ):
                shallow, deep = Queue(url_a, token_a, make), Queue(url_b, token_b, make)
                await compare(name, label, shallow, deep, settle)
