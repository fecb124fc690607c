"""The job event bus: bounded per subscriber, lossy with a notice, free without subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from corral.domain.jobs import Job, JobSpec
from corral.domain.principals import Principal, Role
from corral.domain.states import JobStatus
from corral.errors import Forbidden
from corral.services.events import Hub
from corral.services.job_events import EventsDropped, JobEvents, JobFinished, JobOutput, JobStarted


def job(job_id: str = "j1", status: JobStatus = JobStatus.RUNNING) -> Job:
    return Job(
        id=job_id,
        seq=1,
        spec=JobSpec(command="true"),
        priority=0,
        owner_id="owner",
        status=status,
        created_at=0.0,
        max_retries=0,
        lease_seconds=60.0,
        executor_id="w1",
    )


async def test_a_subscriber_gets_events_in_order() -> None:
    bus = JobEvents()
    with bus.subscribe() as sub:
        bus.started([job()], 1.0)
        bus.output("j1", "stdout", b"hi\xff", 2.0)
        bus.finished([job(status=JobStatus.COMPLETED)], 3.0)
        got = [await sub.get() for _ in range(3)]
    assert isinstance(got[0], JobStarted) and got[0].at == 1.0
    assert got[1] == JobOutput("j1", "stdout", "hi\ufffd", 2.0)  # undecodable bytes replaced
    assert isinstance(got[2], JobFinished) and got[2].job.status is JobStatus.COMPLETED


async def test_only_terminal_jobs_count_as_finished() -> None:
    bus = JobEvents()
    with bus.subscribe() as sub:
        bus.finished([job(status=JobStatus.PENDING)], 1.0)  # retried: not over yet
        bus.finished([job(status=JobStatus.CANCELLED)], 2.0)
        event = await sub.get()
    assert isinstance(event, JobFinished) and event.job.status is JobStatus.CANCELLED


async def test_a_job_filter_keeps_other_jobs_out() -> None:
    bus = JobEvents()
    with bus.subscribe("j2") as sub:
        bus.started([job("j1"), job("j2")], 1.0)
        event = await sub.get()
    assert isinstance(event, JobStarted) and event.job_id == "j2"


async def test_a_slow_subscriber_loses_events_beyond_its_bound_and_is_told() -> None:
    bus = JobEvents()
    with bus.subscribe(bound=3) as slow, bus.subscribe() as fast:
        for n in range(10):
            bus.output("j1", "stdout", str(n).encode(), float(n))
        kept = [await slow.get() for _ in range(3)]
        assert [e.data for e in kept if isinstance(e, JobOutput)] == ["0", "1", "2"]
        assert await slow.get() == EventsDropped(7)  # the queue ran dry: the gap is reported
        bus.output("j1", "stdout", b"late", 11.0)
        assert await slow.get() == JobOutput("j1", "stdout", "late", 11.0)
        assert len([await fast.get() for _ in range(10)]) == 10  # others lose nothing


async def test_the_drop_notice_stands_where_the_gap_was() -> None:
    bus = JobEvents()
    with bus.subscribe(bound=2) as sub:
        for n in range(4):  # 0 and 1 are queued, 2 and 3 dropped
            bus.output("j1", "stdout", str(n).encode(), float(n))
        await sub.get()
        await sub.get()
        bus.output("j1", "stdout", b"4", 4.0)  # room again: notice, then the event
        assert await sub.get() == EventsDropped(2)
        assert await sub.get() == JobOutput("j1", "stdout", "4", 4.0)


async def test_publishing_never_waits_on_a_subscriber() -> None:
    bus = JobEvents()
    with bus.subscribe(bound=5):
        for n in range(10_000):  # nobody reads: a blocking bus would hang here
            bus.output("j1", "stdout", b"x", float(n))


class Untouchable(bytes):
    def decode(self, *args: object, **kwargs: object) -> str:
        raise AssertionError("decoded with nobody listening")


def untouchable_jobs() -> Iterator[Job]:
    raise AssertionError("iterated with nobody listening")
    yield job()


def test_without_subscribers_no_event_is_even_built() -> None:
    bus = JobEvents()
    assert not bus.active
    bus.started(untouchable_jobs(), 1.0)
    bus.finished(untouchable_jobs(), 1.0)
    bus.output("j1", "stdout", Untouchable(b"x"), 1.0)
    with bus.subscribe():
        assert bus.active
    assert not bus.active  # leaving the block unsubscribes


async def test_closing_the_hub_ends_every_subscription() -> None:
    hub = Hub()
    sub = hub.events.subscribe()
    waiter = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    hub.close()
    assert await asyncio.wait_for(waiter, 1.0) is None
    late = hub.events.subscribe()  # a watcher arriving during shutdown ends at once
    assert await asyncio.wait_for(late.get(), 1.0) is None


def test_only_readers_may_watch() -> None:
    bus = JobEvents()
    viewer = Principal("v", "v", Role.VIEWER)
    bus.watch(viewer).close()
    with pytest.raises(Forbidden):
        bus.watch(Principal("w", "w", Role.WORKER))
