"""Job events between two replicas' services on one PostgreSQL database, in process:
output that came with a final report, and no echo of a replica's own events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.domain.jobs import AttemptRef, ClaimRequest, JobDraft, JobSpec, Outcome
from corral.domain.principals import Principal, Role
from corral.domain.states import JobStatus
from corral.services.container import Services, open_store
from corral.services.job_events import (
    Delivered,
    EventsDropped,
    JobFinished,
    JobOutput,
    JobStarted,
    Subscription,
)
from corral.settings import ServerSettings
from tests.pg_server import PgServer

ADMIN = Principal("admin", "admin", Role.ADMIN)
WORKER = Principal("w", "w", Role.WORKER)
SETTLE = 0.5  # seconds: long enough for a relayed event (or an echo) to arrive


@pytest.fixture
async def replicas(pg_server: PgServer, tmp_path: Path) -> AsyncIterator[list[Services]]:
    dsn = await pg_server.new_database()
    started = []
    for name in ("a", "b"):
        settings = ServerSettings(data_dir=tmp_path / name, database_url=dsn)
        services = Services(open_store(settings), settings)
        await services.start()
        started.append(services)
    try:
        yield started
    finally:
        for services in started:
            await services.stop()
        await pg_server.drop_database(dsn)


async def drain(subscription: Subscription, count: int) -> list[Delivered]:
    """``count`` events, then whatever else arrives within ``SETTLE``."""
    events = []
    async with asyncio.timeout(5):
        while len(events) < count:
            event = await subscription.get()
            assert event is not None
            events.append(event)
    while True:
        try:
            async with asyncio.timeout(SETTLE):
                event = await subscription.get()
        except TimeoutError:
            return events
        assert event is not None
        events.append(event)


async def run_with_report(services: Services, job_id: str | None = None) -> str:
    """A job claimed and finished through ``services``, its output in the final report
    (as CMD Executor's workers send it), after one chunk streamed before."""
    draft = JobDraft(JobSpec(command="true"), priority=0, job_id=job_id)
    [job] = (await services.jobs.submit(ADMIN, [draft])).jobs
    request = ClaimRequest(executor_id="w-a", principal_id="w", limit=1)
    [claimed] = await services.leases.claim(WORKER, request, wait=0)
    ref = AttemptRef("w-a", claimed.attempt)
    await services.leases.append_output(job.id, ref, "stdout", b"streamed\n")
    outcome = Outcome(JobStatus.COMPLETED, exit_code=0, stdout="reported\n", stderr="oops\n")
    await services.leases.finish(job.id, ref, outcome)
    return job.id


async def test_a_report_s_output_reaches_a_watcher_on_the_other_replica(
    replicas: list[Services],
) -> None:
    a, b = replicas
    with b.hub.events.subscribe() as watcher:
        job_id = await run_with_report(a)
        events = await drain(watcher, 5)
    assert [type(e) for e in events] == [JobStarted, JobOutput, JobOutput, JobOutput, JobFinished]
    outputs = [(e.stream, e.data) for e in events if isinstance(e, JobOutput)]
    assert outputs == [("stdout", "streamed\n"), ("stdout", "reported\n"), ("stderr", "oops\n")]
    finished = events[-1]
    assert isinstance(finished, JobFinished) and finished.job.id == job_id
    assert finished.job.status == JobStatus.COMPLETED


async def test_a_replica_never_hears_its_own_events_twice(replicas: list[Services]) -> None:
    a, b = replicas
    with a.hub.events.subscribe() as here, b.hub.events.subscribe() as there:
        await run_with_report(a)
        seen_here, seen_there = await drain(here, 5), await drain(there, 5)
    assert len(seen_here) == len(seen_there) == 5  # each event once, on both replicas


async def test_a_watcher_of_one_job_gets_that_job_s_events_only(replicas: list[Services]) -> None:
    a, b = replicas
    with b.hub.events.subscribe("job-watched") as watcher:
        await run_with_report(a, "job-not-watched")
        await run_with_report(a, "job-watched")
        events = await drain(watcher, 5)
    assert [type(e) for e in events] == [JobStarted, JobOutput, JobOutput, JobOutput, JobFinished]
    assert {e.job_id for e in events if not isinstance(e, EventsDropped)} == {"job-watched"}
