"""Wake-ups: a change between 'look' and 'wait' is never missed; idle waits time out."""

from __future__ import annotations

import asyncio

from corral.services.events import JOBS, Hub, job_topic


async def test_fire_wakes_a_waiter_at_once() -> None:
    hub = Hub()
    generation = hub.jobs.generation
    waiter = asyncio.create_task(hub.jobs.wait(generation, 5.0))
    await asyncio.sleep(0)
    hub.fire(JOBS)
    assert await asyncio.wait_for(waiter, 1.0) is True


async def test_a_fire_before_the_wait_is_not_lost() -> None:
    hub = Hub()
    signal = hub.signal(job_topic("a"))
    generation = signal.generation
    hub.fire(job_topic("a"))  # lands between the store read and the wait
    assert await signal.wait(generation, 0.01) is True


async def test_wait_times_out_when_nothing_happens() -> None:
    hub = Hub()
    assert await hub.jobs.wait(hub.jobs.generation, 0.01) is False


async def test_per_job_signals_are_dropped_when_nobody_waits() -> None:
    hub = Hub()
    hub.signal(job_topic("b"))
    hub.fire(job_topic("b"))
    assert job_topic("b") not in hub._topics
