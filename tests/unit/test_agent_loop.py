"""The whole agent against a real dispatcher (uvicorn in a thread): throughput, leases, drain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent.agent import Agent, AgentConfig
from corral.agent.runner import claim_began
from tests.live import LiveServer


@pytest.fixture
async def api(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    async with httpx.AsyncClient(
        base_url=live_server.url + "/api/v1", headers=headers, timeout=30
    ) as client:
        yield client


def make_agent(server: LiveServer, tmp_path: Path, **overrides: Any) -> Agent:
    settings: dict[str, Any] = {"claim_wait": 2.0, "drain_timeout": 10.0, "grace": 0.5}
    settings.update(overrides)
    token = server.token("worker")
    return Agent(
        AgentConfig(server=server.url, token=token, work_dir=tmp_path / "work", **settings)
    )


async def wait_all(api: httpx.AsyncClient, ids: list[str], seconds: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        jobs = [(await api.get(f"/jobs/{i}")).json() for i in ids]
        if all(j["status"] in ("completed", "failed", "cancelled") for j in jobs):
            return jobs
        assert time.monotonic() < deadline, [j["status"] for j in jobs]
        await asyncio.sleep(0.1)


async def test_many_true_jobs_through_the_agent(
    live_server: LiveServer, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    agent = make_agent(live_server, tmp_path, concurrency=16)
    running = asyncio.create_task(agent.run())
    submitted = await api.post("/jobs/bulk", json=[{"command": "true"}] * 300)
    ids = [j["id"] for j in submitted.raise_for_status().json()]
    begun = time.monotonic()
    deadline = begun + 60
    while (await api.get("/jobs", params={"status": "completed", "limit": 1})).headers[
        "X-Total-Count"
    ] != "300":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    rate = 300 / (time.monotonic() - begun)
    print(f"\n{rate:.0f} `true` jobs/s through dispatcher + agent")  # noqa: T201
    agent.request_shutdown()
    assert await asyncio.wait_for(running, 30) == 0
    jobs = await wait_all(api, ids[:5], 5)
    assert {(j["status"], j["exit_code"]) for j in jobs} == {("completed", 0)}


async def test_lease_clock_starts_when_the_long_poll_answers(
    live_server: LiveServer, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A job handed out late in a long poll must not look expired on arrival."""
    agent = make_agent(live_server, tmp_path, claim_wait=4.0, drain_timeout=1.0)
    running = asyncio.create_task(agent.run())
    await asyncio.sleep(2.7)  # the claim has been waiting for longer than the job's lease
    job = await api.post("/jobs", json={"command": "sleep 2; echo done", "lease_seconds": 2})
    [done] = await wait_all(api, [job.json()["id"]], 15)
    assert (done["status"], done["stdout"], done["attempt"]) == ("completed", "done\n", 1)
    agent.request_shutdown()
    assert await asyncio.wait_for(running, 30) == 0


async def test_bad_token_stops_the_agent(live_server: LiveServer, tmp_path: Path) -> None:
    config = AgentConfig(server=live_server.url, token="crl_not-a-token", work_dir=tmp_path)
    assert await asyncio.wait_for(Agent(config).run(), 10) == 1


@pytest.mark.parametrize(("concurrency", "prefetch"), [(21, None), (4, 97)])
async def test_item1_claims_never_ask_more_than_the_server_takes(
    live_server: LiveServer,
    api: httpx.AsyncClient,
    tmp_path: Path,
    concurrency: int,
    prefetch: int | None,
) -> None:
    """concurrency + prefetch above the claim limit (100) must still claim, clamped."""
    agent = make_agent(live_server, tmp_path, concurrency=concurrency, prefetch=prefetch)
    running = asyncio.create_task(agent.run())
    job = await api.post("/jobs", json={"command": "echo ran"})
    [done] = await wait_all(api, [job.json()["id"]], 15)
    assert (done["status"], done["stdout"]) == ("completed", "ran\n")
    assert agent.claim_limit == 100  # learnt from the registration answer
    agent.request_shutdown()
    assert await asyncio.wait_for(running, 30) == 0


def test_item7_lease_is_timed_from_the_claim_request() -> None:
    """The lease began when the claim was sent plus what the dispatcher says it waited,
    never later than now: a worker frozen after the answer must see it as old."""
    sent = time.monotonic() - 10.0  # the claim went out 10 s ago (a frozen worker)
    assert claim_began(sent, {"claim_waited": 2.5}) == sent + 2.5
    assert claim_began(sent, {}) == sent
    for bogus in (-1, "3", True, None):
        assert claim_began(sent, {"claim_waited": bogus}) == sent
    assert claim_began(sent, {"claim_waited": 1e9}) <= time.monotonic()  # capped by elapsed
