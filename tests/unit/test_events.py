"""Wake-ups: a change between 'look' and 'wait' is never missed; idle waits time out."""

from __future__ import annotations

import asyncio

from corral.services.events import JOBS, Hub, job_topic
from corral.services.metrics import Metrics
from corral.services.scheduler import Scheduler
from corral.store.base import RESYNC


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


async def test_resync_wakes_every_waiter_to_look_again() -> None:
    """The LISTEN connection came back: announcements made meanwhile are lost, so every
    waiter (claimers, live views, followers of one job) re-reads the store."""
    hub = Hub()
    follower = hub.signal(job_topic("a"))
    seen = (hub.jobs.generation, hub.changes.generation, hub.fleet.generation)
    waiters = [
        asyncio.create_task(hub.jobs.wait(seen[0], 5.0)),
        asyncio.create_task(hub.changes.wait(seen[1], 5.0)),
        asyncio.create_task(hub.fleet.wait(seen[2], 5.0)),
        asyncio.create_task(follower.wait(follower.generation, 5.0)),
    ]
    await asyncio.sleep(0)
    hub.relayed(RESYNC)
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1.0) == [True] * 4
    assert hub.outbox is None or hub.outbox.drain() == []  # never announced back


async def test_resync_wakes_the_scheduler() -> None:
    hub = Hub()
    scheduler = Scheduler(None, hub, Metrics())  # type: ignore[arg-type]  # no pass runs
    seen = scheduler._signal.generation
    scheduler.heard("job:a")
    assert scheduler._signal.generation == seen
    scheduler.heard(RESYNC)
    assert scheduler._signal.generation == seen + 1
