"""Run slots: claim order, a stopped waiter leaves the line at once, no slot is lost to a
cancel or to a stop that lands after the job's turn came. Real ``Execution`` objects are
the waiters, stopped through their own ``stop``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.executor import Execution, JobRun, StopReason
from corral.agent.output import OutputForwarder
from corral.agent.slots import RunSlots
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec
from tests.unit.test_agent_executor import RecordingSink


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http))
        yield executor
        executor.close()


def job(executor: Executor, name: str) -> Execution:
    run = JobRun(name, 1, JobSpec(command="true"))
    return Execution(executor, run, OutputForwarder(RecordingSink()))


async def settle() -> None:
    for _ in range(5):  # a few loop turns: every ready callback runs
        await asyncio.sleep(0)


async def test_jobs_get_slots_in_the_order_they_asked(executor: Executor) -> None:
    slots = RunSlots(1)
    first, second, third = (job(executor, n) for n in ("a", "b", "c"))
    assert await slots.take(first)
    waiting = [asyncio.ensure_future(slots.take(j)) for j in (second, third)]
    await settle()
    assert not any(w.done() for w in waiting)
    slots.give_back()
    await settle()
    assert (waiting[0].done(), waiting[1].done()) == (True, False)
    slots.give_back()
    assert await waiting[1]
    slots.give_back()
    assert slots.free == 1


async def test_a_stopped_waiter_leaves_at_once_and_takes_no_slot(executor: Executor) -> None:
    slots = RunSlots(1)
    running, stopped, next_one = (job(executor, n) for n in ("a", "b", "c"))
    assert await slots.take(running)
    waiting = asyncio.ensure_future(slots.take(stopped))
    behind = asyncio.ensure_future(slots.take(next_one))
    await settle()
    stopped.stop(StopReason.SHUTDOWN)
    assert await asyncio.wait_for(waiting, 1) is False
    slots.give_back()  # the slot skips the stopped job
    assert await asyncio.wait_for(behind, 1) is True
    assert slots.free == 0  # held by ``next_one``, as it should


async def test_a_job_stopped_before_asking_gets_nothing(executor: Executor) -> None:
    slots = RunSlots(2)
    stopped = job(executor, "a")
    stopped.stop(StopReason.CANCEL)
    assert await slots.take(stopped) is False
    assert slots.free == 2


async def test_a_stop_after_the_turn_came_hands_the_slot_on(executor: Executor) -> None:
    slots = RunSlots(1)
    first, late, after = (job(executor, n) for n in ("a", "b", "c"))
    assert await slots.take(first)
    waiting = asyncio.ensure_future(slots.take(late))
    await settle()
    slots.give_back()  # ``late`` has its turn, but its task has not run yet...
    late.stop(StopReason.LOST)  # ...when it is stopped
    assert await waiting is False
    assert await asyncio.wait_for(slots.take(after), 1) is True  # the slot was not lost


async def test_a_cancelled_waiter_loses_no_slot(executor: Executor) -> None:
    slots = RunSlots(1)
    first, cancelled = job(executor, "a"), job(executor, "b")
    assert await slots.take(first)
    waiting = asyncio.ensure_future(slots.take(cancelled))
    await settle()
    slots.give_back()  # handed to the waiter as the cancel lands
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert slots.free == 1
