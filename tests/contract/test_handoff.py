"""``insert_and_claim``: a submit's jobs leased to waiting claims in the submit's transaction.

Each claim is the store's ordinary claim, run after the insert: it leases what a
claim would lease at that moment, by every rule of the queue, and a refused insert
leases nothing.
"""

from __future__ import annotations

import pytest

from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import AlreadyExists
from corral.store.base import Store
from tests.contract.contract_support import NOW, claim_request, new_job


async def test_the_new_job_is_leased_to_the_claim_with_its_attempt(store: Store) -> None:
    before = await store.clock()
    inserted = await store.insert_and_claim(
        [new_job("j1", lease_seconds=30)], [claim_request("exec-7", principal_id="worker-7")]
    )
    [stored] = inserted.jobs
    assert (stored.id, stored.status, stored.attempt) == ("j1", JobStatus.PENDING, 0)
    [[leased]] = inserted.claimed
    assert (leased.id, leased.status, leased.attempt) == ("j1", JobStatus.RUNNING, 1)
    assert leased.executor_id == "exec-7" and leased.lease_principal_id == "worker-7"
    assert leased.started_at is not None and leased.started_at >= before - 1
    assert leased.lease_expires_at == leased.started_at + 30
    assert await store.get_job("j1") == leased
    [attempt] = await store.get_attempts("j1")
    assert (attempt.number, attempt.executor_id, attempt.status) == (
        1,
        "exec-7",
        AttemptStatus.RUNNING,
    )
    assert attempt.claimed_at == leased.started_at
    executor = await store.get_executor("exec-7")  # seen, as by any claim
    assert executor is not None and executor.last_heartbeat == leased.started_at


async def test_the_claim_takes_what_the_queue_would_give_first(store: Store) -> None:
    """A job already queued ahead of the new one (higher priority) is leased instead."""
    await store.insert_jobs([new_job("urgent", priority=9, labels=("gpu",))])
    inserted = await store.insert_and_claim(
        [new_job("new", priority=0)], [claim_request(labels=frozenset({"gpu"}))]
    )
    assert [[j.id for j in c] for c in inserted.claimed] == [["urgent"]]
    new = await store.get_job("new")
    assert new is not None and new.status == JobStatus.PENDING


async def test_a_claim_that_does_not_fit_leases_nothing(store: Store) -> None:
    inserted = await store.insert_and_claim(
        [new_job("gpu-job", labels=("gpu",))], [claim_request(labels=frozenset({"cpu"}))]
    )
    assert inserted.claimed == [[]]
    job = await store.get_job("gpu-job")
    assert job is not None and job.status == JobStatus.PENDING and job.attempt == 0
    assert await store.get_attempts("gpu-job") == []


async def test_claims_take_their_limits_in_turn(store: Store) -> None:
    inserted = await store.insert_and_claim(
        [new_job(f"j{i}") for i in range(5)],
        [claim_request("a", limit=2), claim_request("b", limit=10), claim_request("c")],
    )
    assert [[j.id for j in c] for c in inserted.claimed] == [["j0", "j1"], ["j2", "j3", "j4"], []]
    assert [j.executor_id for j in inserted.claimed[1]] == ["b"] * 3


async def test_a_held_job_is_not_handed_over(store: Store) -> None:
    """Concurrency keys decide as usual: past the key's limit a new job is held."""
    await store.insert_jobs([new_job("first", concurrency_key="k", concurrency_limit=1)])
    inserted = await store.insert_and_claim(
        [new_job("second", concurrency_key="k", concurrency_limit=1)], [claim_request(limit=5)]
    )
    assert [[j.id for j in c] for c in inserted.claimed] == [["first"]]
    second = await store.get_job("second")
    assert second is not None and second.held and second.status == JobStatus.PENDING


async def test_a_refused_insert_leases_nothing(store: Store) -> None:
    await store.insert_jobs([new_job("taken", created_at=NOW - 500)])
    with pytest.raises(AlreadyExists):
        await store.insert_and_claim([new_job("fresh"), new_job("taken")], [claim_request(limit=5)])
    assert await store.get_job("fresh") is None
    old = await store.get_job("taken")
    assert old is not None and old.status == JobStatus.PENDING and old.attempt == 0
