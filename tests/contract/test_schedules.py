"""Schedules on both stores: one job per tick across replicas, overlap, catch-up, CRUD.

Each "replica" is a scheduler of its own. On PostgreSQL each has its own store
(pool) on the same database, so the races go through the real engine; a SQLite
file belongs to one process, so there the schedulers share the store object and
race through its one writer. Time is moved by hand: a pass at
``now`` decides what a scheduler waking at that moment would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from corral.domain.jobs import JobDraft, JobSpec, Outcome
from corral.domain.principals import Principal, Role
from corral.domain.schedules import CatchUp, Overlap
from corral.domain.states import JobStatus
from corral.errors import Forbidden, InvalidInput, NotFound
from corral.services.events import Hub
from corral.services.jobs import JobService
from corral.services.metrics import Metrics
from corral.services.scheduler import Scheduler
from corral.services.schedules import ScheduleChanges, ScheduleInput, ScheduleService
from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.contract.contract_support import POLICY, claim_request, new_job, ref

T0 = 1_800_000_000.0  # a whole second, so every-second ticks fall on T0 + n
OWNER = Principal(id="owner-1", name="owner", role=Role.SUBMITTER)
OTHER = Principal(id="other-1", name="other", role=Role.SUBMITTER)
ADMIN = Principal(id="admin-1", name="admin", role=Role.ADMIN)
DRAFT = JobDraft(spec=JobSpec(command="echo tick"), priority=0)


@dataclass
class Replica:
    store: Store
    scheduler: Scheduler
    schedules: ScheduleService


def _replica(store: Store, clock: list[float]) -> Replica:
    hub, metrics = Hub(), Metrics()
    scheduler = Scheduler(store, hub, metrics, clock=lambda: clock[0])
    jobs = JobService(store, hub, metrics, 1 << 20)
    return Replica(store, scheduler, ScheduleService(store, jobs, scheduler))


def _same_database(store: Store) -> Store:
    if isinstance(store, SqliteStore):
        return store
    assert isinstance(store, PostgresStore)
    return PostgresStore(store.dsn)


Clock = list[float]  # the time every replica's scheduler reads: ``clock[0]``


@pytest.fixture
def clock() -> Clock:
    return [T0]


@pytest.fixture
async def pair(store: Store, clock: Clock) -> AsyncIterator[tuple[Replica, Replica]]:
    other = _same_database(store)
    if other is not store:
        await other.open()
    replicas = _replica(store, clock), _replica(other, clock)
    try:
        yield replicas
    finally:
        if replicas[1].store is not store:  # the one open now (a test may restart it)
            await replicas[1].store.close()


async def _create(replica: Replica, **fields: object) -> str:
    given = ScheduleInput(name="every second", cron="* * * * * *", job=DRAFT, overlap=Overlap.ALLOW)
    if fields:
        given = dataclasses.replace(given, **fields)  # type: ignore[arg-type]
    view = await replica.schedules.create(OWNER, given)
    return view.schedule.id


async def _ticks(store: Store, schedule_id: str) -> list[float]:
    jobs = await store.schedule_jobs(schedule_id, 10_000)
    return sorted(j.scheduled_for for j in jobs if j.scheduled_for is not None)


async def test_two_replicas_fire_each_tick_exactly_once_across_a_restart(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, b = pair
    schedule_id = await _create(a)
    for n in range(1, 31):
        clock[0] = T0 + n + 0.01
        if n == 15:  # replica b restarts: a new store and scheduler on the same database
            if b.store is not store:
                await b.store.close()
                b.store = _same_database(store)
                await b.store.open()
            b = _replica(b.store, clock)
        fired = await asyncio.gather(a.scheduler.run_once(clock[0]), b.scheduler.run_once(clock[0]))
        assert sum(len(f) for f in fired) == 1, (n, fired)
    ticks = await _ticks(store, schedule_id)
    assert ticks == [T0 + n for n in range(1, 31)]
    assert max(Counter(ticks).values()) == 1


async def test_fired_jobs_carry_schedule_id_and_their_tick_not_the_submit_time(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, _ = pair
    schedule_id = await _create(a, jitter_seconds=0)
    clock[0] = T0 + 1.4
    [fired] = await a.scheduler.run_once(clock[0])
    stored = await store.get_job(fired.id)
    assert stored is not None
    assert (stored.schedule_id, stored.scheduled_for) == (schedule_id, T0 + 1)
    assert stored.created_at == T0 + 1.4
    assert stored.owner_id == OWNER.id and stored.spec.command == "echo tick"


async def test_overlap_skip_passes_ticks_over_while_the_previous_run_is_unfinished(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, _ = pair
    schedule_id = await _create(a, overlap=Overlap.SKIP)
    clock[0] = T0 + 1
    [first] = await a.scheduler.run_once(clock[0])
    clock[0] = T0 + 2
    assert await a.scheduler.run_once(clock[0]) == []  # still pending: skipped
    [running] = await store.claim(claim_request(), clock[0])
    assert running.id == first.id
    clock[0] = T0 + 3
    assert await a.scheduler.run_once(clock[0]) == []  # running: skipped
    await store.finish(first.id, ref(), Outcome(JobStatus.COMPLETED, 0), clock[0], POLICY)
    clock[0] = T0 + 4
    assert len(await a.scheduler.run_once(clock[0])) == 1  # the previous run ended
    assert await _ticks(store, schedule_id) == [T0 + 1, T0 + 4]


async def test_a_keyed_run_waits_for_its_key_and_counts_as_unfinished(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    """A schedule's job with a concurrency key goes through the key like any job; held
    back, it is still the schedule's unfinished run, so ``skip`` passes the next tick."""
    a, _ = pair
    spec = JobSpec(command="echo tick", concurrency_key="nightly")
    schedule_id = await _create(a, job=JobDraft(spec=spec, priority=0), overlap=Overlap.SKIP)
    [holder] = await store.insert_jobs([new_job("holder", concurrency_key="nightly")])
    clock[0] = T0 + 1
    [fired] = await a.scheduler.run_once(clock[0])
    [stored] = await store.get_jobs([fired.id])
    assert stored.held and stored.spec.concurrency_key == "nightly"
    clock[0] = T0 + 2
    assert await a.scheduler.run_once(clock[0]) == []  # held, so unfinished: skipped
    await store.cancel(holder.id, clock[0])  # the key's slot frees: the run is admitted
    [running] = await store.claim(claim_request(), clock[0])
    assert running.id == fired.id
    assert await _ticks(store, schedule_id) == [T0 + 1]


async def test_overlap_cancel_previous_cancels_the_unfinished_run_and_fires(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, _ = pair
    await _create(a, overlap=Overlap.CANCEL_PREVIOUS)
    clock[0] = T0 + 1
    [first] = await a.scheduler.run_once(clock[0])
    clock[0] = T0 + 2
    [second] = await a.scheduler.run_once(clock[0])
    old, new = await store.get_job(first.id), await store.get_job(second.id)
    assert old is not None and old.status is JobStatus.CANCELLED
    assert new is not None and new.status is JobStatus.PENDING


@pytest.mark.parametrize(("catch_up", "expected"), [(CatchUp.ONE, 1), (CatchUp.NONE, 0)])
async def test_catch_up_after_a_three_tick_downtime(
    store: Store,
    clock: Clock,
    pair: tuple[Replica, Replica],
    catch_up: CatchUp,
    expected: int,
) -> None:
    """``one`` fires exactly one job for the ticks nobody was up for, ``none`` none;
    both go on with the on-time tick."""
    a, _ = pair
    schedule_id = await _create(a, catch_up=catch_up)
    clock[0] = T0 + 1.01
    assert len(await a.scheduler.run_once(clock[0])) == 1
    clock[0] = T0 + 5.3  # down through ticks 2, 3 and 4; back just after tick 5
    await a.scheduler.run_once(clock[0])
    ticks = await _ticks(store, schedule_id)
    missed = [t for t in ticks if T0 + 2 <= t <= T0 + 4]
    assert len(missed) == expected
    assert ticks[0] == T0 + 1 and ticks[-1] == T0 + 5
    if missed:
        assert missed == [T0 + 4]  # the newest missed tick stands for all of them


async def test_paused_schedules_fire_nothing_and_resume_from_now(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, _ = pair
    schedule_id = await _create(a, paused=True)
    clock[0] = T0 + 3.5
    assert await a.scheduler.run_once(clock[0]) == []
    assert await store.next_schedule_due() is None
    await a.schedules.update(OWNER, schedule_id, ScheduleChanges(paused=False))
    assert await store.next_schedule_due() == T0 + 4  # nothing from the pause is due
    clock[0] = T0 + 4
    assert len(await a.scheduler.run_once(clock[0])) == 1


async def test_schedule_round_trip_change_and_delete(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, b = pair
    schedule_id = await _create(a, timezone="Europe/Berlin", jitter_seconds=5)
    view = await b.schedules.get(OWNER, schedule_id)
    s = view.schedule
    assert (s.name, s.cron, s.timezone, s.jitter_seconds) == (
        "every second",
        "* * * * * *",
        "Europe/Berlin",
        5,
    )
    assert s.job == DRAFT and s.overlap is Overlap.ALLOW and s.catch_up is CatchUp.NONE
    assert view.upcoming[:2] == [T0 + 1, T0 + 2]
    assert [v.schedule.id for v in await b.schedules.list(OTHER)] == [schedule_id]
    with pytest.raises(Forbidden):
        await b.schedules.update(OTHER, schedule_id, ScheduleChanges(paused=True))
    with pytest.raises(InvalidInput):
        await b.schedules.update(OWNER, schedule_id, ScheduleChanges(cron="61 * * * *"))
    changed = await b.schedules.update(ADMIN, schedule_id, ScheduleChanges(name="renamed"))
    assert changed.schedule.name == "renamed" and changed.schedule.cron == "* * * * * *"
    await a.schedules.delete(OWNER, schedule_id)
    with pytest.raises(NotFound):
        await b.schedules.get(OWNER, schedule_id)


async def test_the_loop_sleeps_when_idle_and_a_new_schedule_wakes_it(store: Store) -> None:
    """Idle, the loop makes one pass and sleeps (no polling); creating a schedule wakes
    it at once, and a schedule due in a year adds no passes. Real time, real store."""
    hub, metrics = Hub(), Metrics()
    scheduler = Scheduler(store, hub, metrics)
    service = ScheduleService(store, JobService(store, hub, metrics, 1 << 20), scheduler)
    loop = asyncio.create_task(scheduler.run_forever())
    try:
        await asyncio.sleep(1.2)
        assert scheduler.passes == 1
        given = ScheduleInput(name="yearly", cron="0 0 1 1 *", job=DRAFT)
        await service.create(OWNER, given)
        await asyncio.sleep(0.3)
        assert scheduler.passes == 2  # woken by the change, then asleep again
        await asyncio.sleep(1.0)
        assert scheduler.passes == 2
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_a_schedule_made_on_one_replica_wakes_the_scheduler_of_another(
    pg_dsn: str,
) -> None:
    """PostgreSQL only: the change travels by LISTEN/NOTIFY, not by the other's polling."""
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await a.open()
    await b.open()
    hub, metrics = Hub(), Metrics()
    far = Scheduler(b, hub, metrics)
    b.add_listener(far.heard)
    near = Scheduler(a, Hub(), metrics)
    service = ScheduleService(a, JobService(a, hub, metrics, 1 << 20), near)
    loop = asyncio.create_task(far.run_forever())
    try:
        await asyncio.sleep(0.5)
        assert far.passes == 1
        await service.create(OWNER, ScheduleInput(name="y", cron="0 0 1 1 *", job=DRAFT))
        for _ in range(50):
            if far.passes == 2:
                break
            await asyncio.sleep(0.05)
        assert far.passes == 2
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await a.close()
        await b.close()


async def test_a_change_read_before_a_tick_never_moves_the_cursor_back(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    """A PATCH that read the schedule before a tick fired is not written over the
    tick's move (it would fire that tick again); the service retries on the fresh row."""
    a, _ = pair
    schedule_id = await _create(a)
    stale = await store.get_schedule(schedule_id)
    assert stale is not None
    clock[0] = T0 + 1
    assert len(await a.scheduler.run_once(clock[0])) == 1
    renamed = dataclasses.replace(stale, name="stale")
    assert await store.update_schedule(renamed, stale.last_tick) is False
    view = await a.schedules.update(OWNER, schedule_id, ScheduleChanges(name="fresh"))
    assert view.schedule.last_tick == T0 + 1 and view.schedule.name == "fresh"
    clock[0] = T0 + 2
    assert len(await a.scheduler.run_once(clock[0])) == 1
    assert await _ticks(store, schedule_id) == [T0 + 1, T0 + 2]


async def test_a_tick_that_already_has_its_job_gets_no_second_and_the_cursor_moves_on(
    store: Store, clock: Clock, pair: tuple[Replica, Replica]
) -> None:
    a, _ = pair
    schedule_id = await _create(a)
    existing = dataclasses.replace(
        DRAFT.to_new_job("already-fired", OWNER.id, T0),
        schedule_id=schedule_id,
        scheduled_for=T0 + 1,
    )
    await store.insert_jobs([existing])
    clock[0] = T0 + 1
    await a.scheduler.run_once(clock[0])
    jobs = await store.schedule_jobs(schedule_id, 10)
    assert [j.id for j in jobs] == ["already-fired"]
    assert await store.next_schedule_due() == T0 + 2
