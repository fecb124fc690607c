"""Each held job's lease runs out at its own time by the worker's clock, and a renewal
pushes it back; one timer serves every lease. The dispatcher is unreachable here (a
closed port), as when leases really run out; the jobs are real ``Execution`` objects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.dispatcher import Dispatcher
from corral.agent.executor import Execution, JobRun, StopReason
from corral.agent.output import OutputForwarder
from corral.agent.renewal import Held, Renewal
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec
from tests.processes import free_port
from tests.unit.test_agent_executor import RecordingSink


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http))
        yield executor
        executor.close()


@pytest.fixture
async def renewal() -> AsyncIterator[Renewal]:
    dispatcher = Dispatcher(f"http://127.0.0.1:{free_port()}", "crl_x", "e-1")

    async def reregister() -> bool:
        return True

    yield Renewal(dispatcher, lambda: False, reregister)
    await dispatcher.aclose()


def held(executor: Executor, job_id: str, lease: float) -> Held:
    run = JobRun(job_id, 1, JobSpec(command="true"))
    return Held(run, lease, Execution(executor, run, OutputForwarder(RecordingSink())))


async def test_each_lease_runs_out_at_its_own_time(executor: Executor, renewal: Renewal) -> None:
    short, long = held(executor, "a", 0.2), held(executor, "b", 0.6)
    now = time.monotonic()
    renewal.hold(long, now)
    renewal.hold(short, now)  # sooner than the timer set for ``long``
    await asyncio.sleep(0.4)
    assert short.execution.stop_reason is StopReason.LEASE_EXPIRED
    assert long.execution.stop_reason is None
    await asyncio.sleep(0.4)
    assert long.execution.stop_reason is StopReason.LEASE_EXPIRED


async def test_a_renewed_lease_runs_out_later(executor: Executor, renewal: Renewal) -> None:
    job = held(executor, "a", 0.6)
    renewal.hold(job, time.monotonic())
    await asyncio.sleep(0.4)
    renewed = {"renewed": [{"job_id": "a", "attempt": 1}]}
    renewal._apply_heartbeat(renewed, {"a": job}, time.monotonic())  # a heartbeat's answer
    await asyncio.sleep(0.4)  # past the first lease (0.6 s), 0.2 s left of the renewed one
    assert job.execution.stop_reason is None
    await asyncio.sleep(0.5)
    assert job.execution.stop_reason is StopReason.LEASE_EXPIRED


async def test_a_lease_already_spent_at_claim_expires_at_once(
    executor: Executor, renewal: Renewal
) -> None:
    """A worker frozen while the claim's answer was in flight finds the lease gone."""
    job = held(executor, "a", 1.0)
    renewal.hold(job, time.monotonic() - 2.0)
    await asyncio.sleep(0.05)
    assert job.execution.stop_reason is StopReason.LEASE_EXPIRED


async def test_a_forgotten_job_is_left_alone(executor: Executor, renewal: Renewal) -> None:
    done, other = held(executor, "a", 0.2), held(executor, "b", 0.2)
    now = time.monotonic()
    renewal.hold(done, now)
    renewal.hold(other, now)
    renewal.forget(done)  # its outcome was delivered
    await asyncio.sleep(0.4)
    assert done.execution.stop_reason is None
    assert other.execution.stop_reason is StopReason.LEASE_EXPIRED
