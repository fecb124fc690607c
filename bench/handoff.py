"""The dispatcher's part of submit-to-running: prints figures, asserts nothing.

A worker waiting for work has a long-poll claim parked on the dispatcher. One job is
submitted; the submit's answer and the claim's answer are timed from the moment the
submit was sent, over HTTP on 127.0.0.1, on the real `corral server` (SQLite, and
PostgreSQL when its binaries are present), one job at a time:

    .venv/bin/python bench/handoff.py [--backend sqlite|postgres|all] [--jobs 200]

Printed: the submit's round trip, and the time until the claim's answer was read
(what the worker waits before it can start the job), p50 and p90 in ms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.dispatcher import run_benchmark, server  # noqa: E402
from bench.rawhttp import RawClient  # noqa: E402


async def measure(url: str, token: str, jobs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"submit answered": [], "claim answered": []}
    async with RawClient(url, token) as worker, RawClient(url, token) as submitter:
        for _ in range(jobs):
            claim = {"executor_id": "handoff", "n": 8, "wait": 30}
            waiting = asyncio.create_task(worker.request("POST", "/api/v1/jobs/claim", claim))
            await asyncio.sleep(0.02)  # the claim is parked by now
            sent = time.perf_counter()
            _, job = await submitter.request("POST", "/api/v1/jobs", {"command": "true"})
            times["submit answered"].append((time.perf_counter() - sent) * 1000)
            _, claimed = await waiting
            times["claim answered"].append((time.perf_counter() - sent) * 1000)
            assert [j["id"] for j in claimed] == [job["id"]], (claimed, job)
            body = {"executor_id": "handoff", "attempt": 1, "exit_code": 0}
            await worker.request("PUT", f"/api/v1/jobs/{job['id']}/complete", body)
    return times


async def run_backend(name: str, database_url: str | None, jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp), database_url) as (url, token):
        await measure(url, token, 10)  # warm-up
        for what, samples in (await measure(url, token, jobs)).items():
            samples.sort()
            p50, p90 = statistics.median(samples), samples[int(len(samples) * 0.9)]
            print(f"[{name}] {what}: p50 {p50:.2f} ms, p90 {p90:.2f} ms after the submit left")


def main() -> None:
    run_benchmark("hand-off", run_backend, 200)


if __name__ == "__main__":
    main()
