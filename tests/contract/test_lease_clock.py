"""Lease times and the store's clock (item 12): the dispatcher measures leases by the
store's clock (the database's on PostgreSQL), and neither a restart nor a forward jump
of that clock expires every lease at once. Clocks are moved by hand, never slept on."""

from __future__ import annotations

import pytest

from corral.domain.jobs import Outcome
from corral.domain.states import JobStatus
from corral.errors import Unavailable
from corral.services.events import Hub
from corral.services.leasing import LeaseService
from corral.services.metrics import Metrics
from corral.services.reaper import Reaper
from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


def _reaper(store: Store, grace: float = 60.0) -> Reaper:
    return Reaper(store, LeaseService(store, Hub(), Metrics(), POLICY), grace)


async def test_item12_lease_times_come_from_the_store_clock(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i}", lease_seconds=30) for i in range(2)])
    before = await store.clock()
    [job] = await store.claim(claim_request(), None)
    renewed = await store.renew_lease("j0", ref(), None, 45)
    [again] = await store.renew_executor_leases("exec-1", [("j0", 1)], None)
    after = await store.clock()

    assert job.started_at is not None and before <= job.started_at <= after
    assert job.lease_expires_at == job.started_at + 30
    assert renewed.lease_expires_at is not None
    assert before + 45 <= renewed.lease_expires_at <= after + 45
    assert again.lease_expires_at is not None
    assert before + 30 <= again.lease_expires_at <= after + 30
    [attempt] = await store.get_attempts("j0")
    assert attempt.claimed_at == job.started_at
    # Nothing is expired by the store's clock, whatever this process's clock says.
    assert await store.reap_expired(None, POLICY, 10) == []
    retried = await store.finish(
        "j0", ref(), Outcome(JobStatus.FAILED, 1, retry=True), None, POLICY
    )
    end = await store.clock()
    assert retried.status == JobStatus.PENDING
    assert after + 10 <= retried.run_after <= end + 10  # POLICY's flat 10 s backoff


async def test_item12_after_a_restart_each_lease_is_spared_only_its_own_period(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("short", lease_seconds=3), new_job("long", lease_seconds=300)])
    await store.claim(claim_request(limit=2), NOW)
    reaper = _reaper(store)
    reaper.start(wall=NOW + 400, mono=0.0)  # restarted after both leases ran out

    assert await reaper.run_once(mono=1.0, wall=NOW + 401) == []
    [short] = await reaper.run_once(mono=3.5, wall=NOW + 403.5)  # 3 s, not 60 s
    assert short.id == "short" and short.status == JobStatus.PENDING
    assert await reaper.run_once(mono=59.0, wall=NOW + 459) == []
    [long] = await reaper.run_once(mono=60.0, wall=NOW + 460)  # the grace's cap
    assert long.id == "long"


async def test_after_the_database_was_away_each_lease_is_spared_its_own_period(
    pg_dsn: str,
) -> None:
    """Nobody could renew while the database was away: once it is back, leases get their
    own period again (as after a restart), so a worker's outcome or renewal delivered
    then still counts, rather than finding its job reaped at the first pass. (PostgreSQL
    only: a SQLite file does not go away while its server runs.)"""
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        await _spared_after_an_outage(store)
    finally:
        await store.close()


async def _spared_after_an_outage(store: PostgresStore) -> None:
    await store.insert_jobs([new_job("short", lease_seconds=3)])
    await store.claim(claim_request(), NOW)
    reaper = _reaper(store)
    reaper.start(wall=NOW, mono=0.0)
    assert await reaper.run_once(mono=1.0, wall=NOW + 1) == []
    await store.close()  # the database goes away...
    with pytest.raises(Unavailable):
        await reaper.run_once(mono=2.0, wall=NOW + 2)
    await store.open()  # ...and is back long after the lease ran out
    assert await reaper.run_once(mono=10.0, wall=NOW + 10) == []
    assert await reaper.run_once(mono=12.5, wall=NOW + 12.5) == []
    [short] = await reaper.run_once(mono=13.5, wall=NOW + 13.5)  # 3 s after, not 60
    assert short.id == "short" and short.status == JobStatus.PENDING


async def test_item12_a_forward_clock_jump_is_not_a_mass_expiry(store: Store) -> None:
    await store.insert_jobs([new_job(j, lease_seconds=30) for j in ("alive", "dead")])
    await store.claim(claim_request(limit=2), NOW)
    reaper = _reaper(store)
    reaper.start(wall=NOW, mono=0.0)
    assert await reaper.run_once(mono=10.0, wall=NOW + 10) == []

    # The wall clock steps an hour forward between two passes one second apart.
    assert await reaper.run_once(mono=11.0, wall=NOW + 3611) == []
    await store.renew_lease("alive", ref(), NOW + 3615)  # its executor renews in time
    assert await reaper.run_once(mono=40.0, wall=NOW + 3640) == []  # "dead": 29 s of grace
    [dead] = await reaper.run_once(mono=41.5, wall=NOW + 3641.5)
    assert dead.id == "dead" and dead.status == JobStatus.PENDING
    alive = await store.get_job("alive")
    assert alive is not None and alive.status == JobStatus.RUNNING


async def test_item12_without_a_start_or_jump_leases_expire_on_time(store: Store) -> None:
    await store.insert_jobs([new_job("j", lease_seconds=30)])
    await store.claim(claim_request(), NOW)
    reaper = _reaper(store, grace=0.0)
    reaper.start(wall=NOW, mono=0.0)
    assert await reaper.run_once(mono=30.0, wall=NOW + 30) == []
    [reaped] = await reaper.run_once(mono=31.0, wall=NOW + 31)
    assert reaped.id == "j"
