"""Concurrency keys: at most N jobs of a key run at once, whatever ends them, and
racing claims (two PostgreSQL replicas included) never exceed the limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from corral.domain.concurrency import KeyUsage
from corral.domain.jobs import AttemptRef, NewJob, Outcome
from corral.domain.states import JobStatus
from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref

KEY = "deploy-prod"
DONE = Outcome(JobStatus.COMPLETED, exit_code=0)


def keyed(job_id: str, limit: int = 1, **kwargs: Any) -> NewJob:
    return new_job(job_id, concurrency_key=KEY, concurrency_limit=limit, **kwargs)


async def held(store: Store, *ids: str) -> list[bool]:
    found = {j.id: j for j in await store.get_jobs(list(ids))}
    assert all(found[i].status is JobStatus.PENDING for i in ids if found[i].held)
    return [found[i].held for i in ids]


async def test_a_key_admits_its_limit_and_holds_the_rest(store: Store) -> None:
    stored = await store.insert_jobs(
        [keyed(f"d{i}", limit=2) for i in range(4)] + [new_job("free")]
    )
    assert [j.held for j in stored] == [False, False, True, True, False]
    assert await held(store, "d0", "d1", "d2", "d3") == [False, False, True, True]
    claimed = await store.claim(claim_request(limit=10), NOW)
    assert sorted(j.id for j in claimed) == ["d0", "d1", "free"]
    usage = await store.key_usage([KEY, "unused"])
    assert usage[KEY] == KeyUsage(KEY, running=2, queued=0, held=2, limit=2)
    assert usage["unused"] == KeyUsage("unused")
    assert await store.held_keys(10) == [usage[KEY]]
    assert await store.claim(claim_request(limit=10), NOW) == []
    # A slot frees as the job ends, and the next held job is claimable at once.
    await store.finish("d0", ref(), DONE, NOW, POLICY)
    [following] = await store.claim(claim_request(limit=10), NOW)
    assert following.id == "d2"
    assert (await store.key_usage([KEY]))[KEY] == KeyUsage(KEY, running=2, held=1, limit=2)


async def end_by_completing(store: Store) -> None:
    await store.finish("k0", ref(), DONE, None, POLICY)  # PostgreSQL: the one-statement path


async def end_by_failing(store: Store) -> None:
    await store.finish("k0", ref(), Outcome(JobStatus.FAILED, exit_code=1), NOW, POLICY)


async def end_by_cancelling_while_running(store: Store) -> None:
    asked = await store.cancel("k0", NOW)
    assert asked.cancel_requested and asked.status is JobStatus.RUNNING
    assert await held(store, "k1") == [True]  # still running until its worker stops it
    await store.finish("k0", ref(), Outcome(JobStatus.CANCELLED), NOW, POLICY)


async def end_by_losing_the_lease(store: Store) -> None:
    [lost] = await store.reap_expired(NOW + 31, POLICY, 10)  # out of retries: failed
    assert lost.status is JobStatus.FAILED


async def end_by_a_new_registration(store: Store) -> None:
    [lost] = await store.expire_executor_leases("exec-1", "someone-else", NOW, POLICY)
    assert lost.status is JobStatus.FAILED


@pytest.mark.parametrize(
    "end",
    [
        end_by_completing,
        end_by_failing,
        end_by_cancelling_while_running,
        end_by_losing_the_lease,
        end_by_a_new_registration,
    ],
)
async def test_every_end_of_a_running_job_frees_its_slot(
    store: Store, end: Callable[[Store], Awaitable[None]]
) -> None:
    await store.insert_jobs([keyed("k0", max_retries=0), keyed("k1")])
    [running] = await store.claim(claim_request(limit=10), NOW)
    assert running.id == "k0" and await held(store, "k1") == [True]
    await end(store)
    assert await held(store, "k1") == [False]
    [following] = await store.claim(claim_request(limit=10), NOW + 40)
    assert following.id == "k1"


async def test_cancelling_an_admitted_job_frees_its_slot_and_a_held_one_frees_none(
    store: Store,
) -> None:
    await store.insert_jobs([keyed("k0"), keyed("k1"), keyed("k2")])
    cancelled = await store.cancel("k2", NOW)  # held: it had no slot
    assert cancelled.status is JobStatus.CANCELLED and not cancelled.held
    assert await held(store, "k0", "k1") == [False, True]
    await store.cancel("k0", NOW)  # admitted, not started: its slot goes to k1
    assert await held(store, "k1") == [False]
    [following] = await store.claim(claim_request(limit=10), NOW)
    assert following.id == "k1"


async def test_a_requeued_or_released_job_keeps_its_slot(store: Store) -> None:
    await store.insert_jobs([keyed("k0", max_retries=3), keyed("k1")])
    await store.claim(claim_request(), NOW)
    [requeued] = await store.reap_expired(NOW + 31, POLICY, 10)  # retried after a backoff
    assert requeued.status is JobStatus.PENDING and requeued.run_after > NOW + 31
    assert await held(store, "k0", "k1") == [False, True]
    assert await store.claim(claim_request(limit=10), NOW + 32) == []  # k0 backs off, k1 waits
    [again] = await store.claim(claim_request(limit=10), requeued.run_after)
    assert again.id == "k0"
    released = await store.release("k0", ref(attempt=2), requeued.run_after)
    assert released.status is JobStatus.PENDING
    assert await held(store, "k0", "k1") == [False, True]


async def test_held_jobs_are_admitted_best_first(store: Store) -> None:
    await store.insert_jobs([keyed("first")])
    await store.insert_jobs(
        [keyed("low", priority=0), keyed("high", priority=2), keyed("mid", priority=1)]
    )
    order = []
    now = NOW
    for _ in range(4):
        [job] = await store.claim(claim_request(limit=10), now)
        order.append(job.id)
        await store.finish(job.id, ref(), DONE, now, POLICY)
    assert order == ["first", "high", "mid", "low"]


async def test_one_batch_admits_its_best_job_first(store: Store) -> None:
    stored = await store.insert_jobs([keyed("low", priority=0), keyed("high", priority=2)])
    assert [j.held for j in stored] == [True, False]


async def test_held_jobs_never_hold_up_jobs_without_a_key(store: Store) -> None:
    await store.insert_jobs([keyed(f"k{i:03}", priority=2) for i in range(300)])
    await store.insert_jobs([new_job("plain", priority=0)])
    claimed = await store.claim(claim_request(limit=10), NOW)
    assert [j.id for j in claimed] == ["k000", "plain"]


async def test_a_keyed_dependant_goes_through_its_key_when_it_becomes_due(store: Store) -> None:
    parent = new_job("parent")
    dependant = dataclasses.replace(keyed("dependant"), depends_on=("parent",))
    await store.insert_jobs([keyed("holder"), parent, dependant])
    claimed = await store.claim(claim_request(limit=10), NOW)
    assert sorted(j.id for j in claimed) == ["holder", "parent"]
    await store.finish("parent", ref(), DONE, NOW, POLICY)
    [job] = await store.get_jobs(["dependant"])
    assert job.held and not job.blocked  # due, but "holder" has the key's one slot
    await store.finish("holder", ref(), DONE, NOW, POLICY)
    [job] = await store.claim(claim_request(limit=10), NOW)
    assert job.id == "dependant"


async def test_a_reaped_attempt_handed_back_after_its_slot_moved_on_waits_again(
    store: Store,
) -> None:
    await store.insert_jobs([keyed("k0", max_retries=0), keyed("k1")])
    await store.claim(claim_request(), NOW)
    await store.reap_expired(NOW + 31, POLICY, 10)  # k0 failed: k1 took the slot
    returned = await store.return_unstarted("k0", ref(), NOW + 32)
    assert returned.status is JobStatus.PENDING
    assert await held(store, "k0", "k1") == [True, False]


async def test_a_key_never_runs_more_than_its_limit_under_racing_claimers(store: Store) -> None:
    """8 claimers over 500 jobs of a key with limit 2; on PostgreSQL half of them claim
    through a second store on the same database, as a second replica would. Each
    claimer counts what it holds, and a monitor reads the store's own count meanwhile."""
    total, limit = 500, 2
    await store.insert_jobs([keyed(f"k{i:03}", limit=limit) for i in range(total)])
    stores = [store]
    if isinstance(store, PostgresStore):
        stores.append(PostgresStore(store.dsn))
        await stores[1].open()
    holding = peak = seen = 0
    finished: set[str] = set()

    async def claimer(n: int) -> None:
        nonlocal holding, peak
        mine = stores[n % len(stores)]
        while len(finished) < total:
            batch = await mine.claim(claim_request(f"exec-{n}", limit=2), None)
            if not batch:
                await asyncio.sleep(0.002)
                continue
            holding += len(batch)
            peak = max(peak, holding)
            await asyncio.sleep(0)  # the others claim meanwhile
            for job in batch:
                holding -= 1  # before the report: the slot is not free until it lands
                fence = AttemptRef(f"exec-{n}", job.attempt)
                await mine.finish(job.id, fence, DONE, None, POLICY)
                finished.add(job.id)

    async def monitor() -> None:
        nonlocal seen
        while len(finished) < total:
            usage = (await stores[-1].key_usage([KEY]))[KEY]
            seen = max(seen, usage.taken)
            await asyncio.sleep(0.005)

    try:
        await asyncio.gather(*(claimer(n) for n in range(8)), monitor())
    finally:
        for extra in stores[1:]:
            await extra.close()
    assert len(finished) == total
    assert peak == limit and seen <= limit
    assert (await store.count_by_status()) == {JobStatus.COMPLETED: total}
