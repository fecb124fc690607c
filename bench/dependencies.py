"""Blocked jobs cost claims nothing: prints figures, asserts nothing.

Claim latency (single claims, each followed by an untimed complete) with 100
claimable jobs, then with the same 100 claimable jobs and 100,000 blocked ones
behind them (each waits for a job no claimer takes); then how long the last of
1,000 dependencies takes, from its complete to the join job being claimable.
On SQLite and, when PostgreSQL's binaries are present, on PostgreSQL.

    .venv/bin/python bench/dependencies.py [--backend sqlite|postgres|all]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import claim_latency, fill, run_benchmark, server  # noqa: E402


async def blocked_behind(http: httpx.AsyncClient, count: int) -> None:
    """``count`` jobs blocked on one job that carries a label no claimer offers."""
    parked = {"command": "true", "labels": ["bench-never"]}
    parent = (await http.post("/api/v1/jobs", json=parked)).raise_for_status().json()["id"]
    body = {"command": "true", "depends_on": [parent]}
    while count > 0:
        n = min(count, 1000)
        (await http.post("/api/v1/jobs/bulk", json=[body] * n)).raise_for_status()
        count -= n


async def fan_in(http: httpx.AsyncClient, width: int) -> float:
    """ms from the last parent's complete to the join being claimed (one claimer)."""
    parents = [{"command": "true", "labels": ["bench-fan"], "lease_seconds": 3600}] * width
    made = (await http.post("/api/v1/jobs/bulk", json=parents)).raise_for_status().json()
    ids = [j["id"] for j in made]
    join = {"command": "true", "labels": ["bench-fan"], "depends_on": ids}
    join_id = (await http.post("/api/v1/jobs", json=join)).raise_for_status().json()["id"]
    claim = {"executor_id": "fan", "n": 100, "labels": ["bench-fan"]}
    held = []
    while len(held) < width:
        held += (await http.post("/api/v1/jobs/claim", json=claim)).raise_for_status().json()
    for job in held[:-1]:
        body = {"executor_id": "fan", "attempt": job["attempt"], "exit_code": 0}
        (await http.put(f"/api/v1/jobs/{job['id']}/complete", json=body)).raise_for_status()
    last = held[-1]
    t0 = time.perf_counter()
    body = {"executor_id": "fan", "attempt": last["attempt"], "exit_code": 0}
    (await http.put(f"/api/v1/jobs/{last['id']}/complete", json=body)).raise_for_status()
    got = (await http.post("/api/v1/jobs/claim", json=claim)).raise_for_status().json()
    assert [j["id"] for j in got] == [join_id], got
    return (time.perf_counter() - t0) * 1000


async def run_backend(name: str, database_url: str | None, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), database_url) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            await fill(http, 100)
            p50, p99 = await claim_latency(url, token, 100)
            print(f"[{name}] claim latency, 100 pending: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
            await blocked_behind(http, jobs)
            await fill(http, 100)
            q50, q99 = await claim_latency(url, token, 100)
            print(
                f"[{name}] claim latency, 100 pending + {jobs:,} blocked: p50 {q50:.2f} ms, "
                f"p99 {q99:.2f} ms (p50 ratio {q50 / p50:.2f}x)"
            )
            ms = await fan_in(http, 1000)
            print(f"[{name}] last of 1,000 dependencies completed -> join claimed: {ms:.1f} ms")


def main() -> None:
    run_benchmark("dependencies", run_backend, 100_000)


if __name__ == "__main__":
    main()
