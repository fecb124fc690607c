"""What failing over costs a request that does not fail: the time ``AsyncFailoverTransport``
adds per request (choosing the replica, the request's ``Attempts``, rebasing it when a
later replica is in use), against httpx alone. The inner transport answers from memory,
so only CPU time is measured, and as process time (best of several rounds, the three
setups taking turns), so other work on the machine barely moves it. Prints figures,
asserts nothing.

    PYTHONPATH=src .venv/bin/python bench/failover.py [--requests N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx

from corral.failover import AsyncFailoverTransport, Endpoints

A, B = "http://a:3000", "http://b:3000"


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[])


async def per_request(transport: httpx.AsyncBaseTransport, count: int) -> float:
    """CPU microseconds per POST of a small JSON body, in this process."""
    async with httpx.AsyncClient(base_url=A, transport=transport) as client:
        began = time.process_time()
        for _ in range(count):
            await client.post("/api/v1/jobs/results", json=[{"job_id": "x", "attempt": 1}])
        return (time.process_time() - began) / count * 1e6


def setups() -> dict[str, httpx.AsyncBaseTransport]:
    moved = Endpoints((A, B))
    moved.failed(moved.current)  # B in use: every request is rebased on it
    return {
        "httpx alone": httpx.MockTransport(answer),
        "failover, first replica in use": AsyncFailoverTransport(
            Endpoints((A, B)), 0.0, inner=httpx.MockTransport(answer)
        ),
        "failover, second replica in use": AsyncFailoverTransport(
            moved, 0.0, inner=httpx.MockTransport(answer)
        ),
    }


async def main(count: int, rounds: int) -> None:
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, transport in setups().items():
            figure = await per_request(transport, count)
            best[name] = min(best.get(name, figure), figure)
    plain = best["httpx alone"]
    for name, figure in best.items():
        print(f"{name:34} {figure:6.1f} us/request (+{figure - plain:.1f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
