"""A submit hands its jobs to a claim waiting for work, in its own transaction
(``services/handoff.py``), on SQLite and PostgreSQL, through the real services."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from corral.domain.jobs import ClaimRequest, Job, JobDraft, JobSpec
from corral.domain.principals import Principal, Role
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import Unavailable
from corral.services.container import Services, open_store
from corral.services.job_events import JobStarted
from corral.settings import ServerSettings
from corral.store.base import Inserted
from corral.store.sqlite.store import SqliteStore
from tests.pg_server import PgServer

ADMIN = Principal("admin", "admin", Role.ADMIN)
WORKER = Principal("w", "w", Role.WORKER)


@pytest.fixture(params=["sqlite", "postgres"])
async def services(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Services]:
    dsn = None
    if request.param == "postgres":
        pg: PgServer = request.getfixturevalue("pg_server")
        dsn = await pg.new_database()
    settings = ServerSettings(data_dir=tmp_path, database_url=dsn)
    started = Services(open_store(settings), settings)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()
        if dsn is not None:
            await pg.drop_database(dsn)


def draft(labels: tuple[str, ...] = ()) -> JobDraft:
    return JobDraft(JobSpec(command="true", labels=labels), priority=0)


async def until(holds: Callable[[], bool], pause: float = 0.001) -> None:
    """Poll an in-process condition (the services offer no event to wait on for it)."""
    async with asyncio.timeout(10):
        while not holds():  # noqa: ASYNC110
            await asyncio.sleep(pause)


async def parked_claim(
    services: Services,
    labels: frozenset[str] = frozenset(),
    gone: Callable[[], Awaitable[object]] | None = None,
) -> asyncio.Task[list[Job]]:
    """A long-poll claim, once it waits for work."""
    request = ClaimRequest("w-1", "w", labels=labels, limit=4)
    claim = asyncio.create_task(services.leases.claim(WORKER, request, wait=30, gone=gone))
    await until(lambda: bool(services.hub.parked))
    return claim


async def submit(services: Services, *drafts: JobDraft) -> list[Job]:
    return (await services.jobs.submit(ADMIN, list(drafts))).jobs


async def test_a_waiting_claim_gets_the_job_as_any_claim_would(services: Services) -> None:
    watching = services.hub.events.subscribe()
    metrics = services.metrics
    claimed_before = metrics.jobs_claimed._value.get()
    claim = await parked_claim(services)
    [job] = await submit(services, draft())
    assert job.status == JobStatus.PENDING  # the submit's answer: the job as inserted
    async with asyncio.timeout(10):
        [leased] = await claim
    assert (leased.id, leased.status, leased.executor_id) == (job.id, JobStatus.RUNNING, "w-1")
    stored = await services.store.get_job(job.id)
    assert stored == leased
    [attempt] = await services.store.get_attempts(job.id)
    assert (attempt.executor_id, attempt.status) == ("w-1", AttemptStatus.RUNNING)
    # counted, timed and told like any claim
    assert metrics.jobs_claimed._value.get() == claimed_before + 1
    started = await asyncio.wait_for(watching.get(), 5)
    assert isinstance(started, JobStarted) and started.job_id == job.id
    assert not services.hub.parked


async def test_the_job_and_its_lease_are_one_sqlite_commit(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    services = Services(open_store(settings), settings)
    await services.start()
    try:
        store = services.store
        assert isinstance(store, SqliteStore)
        claim = await parked_claim(services)
        statements: list[str] = []
        [writer, _] = store._writer.connections()
        writer.set_trace_callback(statements.append)
        [job] = await submit(services, draft())
        async with asyncio.timeout(10):
            assert [j.id for j in await claim] == [job.id]
        writer.set_trace_callback(None)
    finally:
        await services.stop()
    assert statements.count("COMMIT") == 1, statements


async def test_a_claim_the_job_does_not_fit_waits_on(services: Services) -> None:
    claim = await parked_claim(services, labels=frozenset({"gpu"}))
    [cpu_job] = await submit(services, draft(labels=("cpu",)))
    await asyncio.sleep(0.05)
    assert not claim.done()
    [plain] = await submit(services, draft())
    async with asyncio.timeout(10):
        assert [j.id for j in await claim] == [plain.id]
    left = await services.store.get_job(cpu_job.id)
    assert left is not None and left.status == JobStatus.PENDING and left.attempt == 0


async def test_a_claim_whose_caller_left_is_handed_nothing(services: Services) -> None:
    left = asyncio.Event()
    claim = await parked_claim(services, gone=left.wait)
    left.set()
    await until(lambda: not services.hub.parked)
    [job] = await submit(services, draft())
    stored = await services.store.get_job(job.id)
    assert stored is not None and stored.status == JobStatus.PENDING
    claim.cancel()


async def test_a_claim_cancelled_while_handed_gives_its_jobs_back(services: Services) -> None:
    claim = await parked_claim(services)
    submitting = asyncio.create_task(submit(services, draft()))
    await until(lambda: not services.hub.parked, 0)  # taken: the submit's transaction is on
    assert not claim.done()
    claim.cancel()
    [job] = await submitting
    async with asyncio.timeout(10):
        while (stored := await services.store.get_job(job.id)) and stored.releases == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert stored is not None and stored.status == JobStatus.PENDING
    assert stored.attempt == 1 and stored.releases == 1  # handed back, no retry spent
    [attempt] = await services.store.get_attempts(job.id)
    assert attempt.status == AttemptStatus.RELEASED


async def test_a_submit_cancelled_while_handing_over_still_answers_the_claim(
    services: Services,
) -> None:
    """The insert and its leases go on without the submitter: the claim gets its job."""
    claim = await parked_claim(services)
    submitting = asyncio.create_task(submit(services, draft()))
    await until(lambda: not services.hub.parked, 0)  # taken: the submit's transaction is on
    submitting.cancel()
    async with asyncio.timeout(10):
        [leased] = await claim
    stored = await services.store.get_job(leased.id)
    assert stored is not None and stored.status == JobStatus.RUNNING
    assert stored.executor_id == "w-1" and stored.attempt == 1


async def test_a_claim_handed_a_failed_submit_waits_on_without_looking(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submit that took the claim and then failed stored nothing: the claim must not
    look again (with the database down, the look fails too and the worker hears a 503
    instead of waiting for the database to come back), and a later submit still reaches it."""
    claim = await parked_claim(services)
    store = services.store
    real_claim, real_insert = store.claim, store.insert_and_claim
    looks: list[ClaimRequest] = []

    async def down(*args: object, **kwargs: object) -> Inserted:
        raise Unavailable("the database is unavailable; try again shortly")

    async def counted(request: ClaimRequest, *args: object) -> list[Job]:
        looks.append(request)
        return await real_claim(request, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "insert_and_claim", down)
    monkeypatch.setattr(store, "claim", counted)
    with pytest.raises(Unavailable):
        await submit(services, draft())
    await until(lambda: bool(services.hub.parked))  # parked again, not answering
    assert not claim.done() and looks == []
    monkeypatch.setattr(store, "insert_and_claim", real_insert)
    [job] = await submit(services, draft())
    async with asyncio.timeout(10):
        [leased] = await claim
    assert leased.id == job.id and looks == []


async def test_a_claim_woken_while_the_database_is_away_waits_on(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's return wakes every waiting claim, possibly before this replica's
    pool holds a live connection again: a look that fails then must not answer the
    worker a 503 in the middle of the wait it asked for. It waits on, and the next
    job still reaches it."""
    claim = await parked_claim(services)
    store = services.store
    real_claim = store.claim
    failed: list[ClaimRequest] = []

    async def down(request: ClaimRequest, *args: object) -> list[Job]:
        failed.append(request)
        raise Unavailable("the database is unavailable; try again shortly")

    monkeypatch.setattr(store, "claim", down)
    services.hub.wake_all()  # as the resync after an outage does
    await until(lambda: bool(failed) and bool(services.hub.parked))  # looked, parked again
    assert not claim.done()
    monkeypatch.setattr(store, "claim", real_claim)
    [job] = await submit(services, draft())
    async with asyncio.timeout(10):
        [leased] = await claim
    assert leased.id == job.id


async def test_a_claim_that_has_not_waited_yet_hears_of_the_outage(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before it waits, a claim that meets a database outage says so (503): the worker
    backs off rather than believe the queue is empty."""

    async def down(*args: object) -> list[Job]:
        raise Unavailable("the database is unavailable; try again shortly")

    monkeypatch.setattr(services.store, "claim", down)
    with pytest.raises(Unavailable):
        await services.leases.claim(WORKER, ClaimRequest("w-1", "w", limit=1), wait=30)
