"""Fair share: within a priority, claims serve owners in turn, not one owner's backlog
first; each owner's jobs keep their order, and priorities still come first."""

from __future__ import annotations

import dataclasses

import pytest

from corral.domain.jobs import NewJob
from corral.store.base import Store
from tests.contract.contract_support import NOW, claim_request, new_job


def owned(owner: str, count: int, *, start: int = 0, priority: int = 0) -> list[NewJob]:
    return [
        new_job(f"{owner}{i:05}", owner_id=owner, priority=priority, command="true")
        for i in range(start, start + count)
    ]


async def claim_ids(store: Store, claims: int, n: int = 10) -> list[str]:
    ids: list[str] = []
    for _ in range(claims):
        ids += [j.id for j in await store.claim(claim_request(limit=n), NOW)]
    return ids


@pytest.mark.slow
async def test_another_owners_job_is_served_within_two_claims_of_a_20000_job_backlog(
    store: Store,
) -> None:
    await store.insert_jobs(owned("a", 10_000))
    await store.insert_jobs(owned("a", 10_000, start=10_000))
    await store.insert_jobs(owned("b", 1))
    assert "b00000" in await claim_ids(store, 2)


async def test_owners_alternate_and_each_keeps_its_own_order(store: Store) -> None:
    await store.insert_jobs(owned("a", 5))
    await store.insert_jobs(owned("b", 3))
    order = await claim_ids(store, 8, n=1)
    assert order == [
        "a00000",
        "b00000",
        "a00001",
        "b00001",
        "a00002",
        "b00002",
        "a00003",
        "a00004",
    ]


async def test_an_owner_submitting_one_job_at_a_time_keeps_its_place(store: Store) -> None:
    for i in range(4):  # four separate submits, as a loop of `corral submit` makes
        await store.insert_jobs(owned("a", 1, start=i))
    await store.insert_jobs(owned("b", 2))
    assert await claim_ids(store, 6, n=1) == [
        "a00000",
        "b00000",
        "a00001",
        "b00001",
        "a00002",
        "a00003",
    ]


async def test_an_owner_arriving_later_joins_at_the_turn_being_served(store: Store) -> None:
    await store.insert_jobs(owned("a", 10))
    assert await claim_ids(store, 1, n=5) == [f"a{i:05}" for i in range(5)]
    await store.insert_jobs(owned("b", 3))
    assert await claim_ids(store, 1, n=6) == [
        "a00005",
        "b00000",
        "a00006",
        "b00001",
        "a00007",
        "b00002",
    ]


async def test_priorities_come_before_turns(store: Store) -> None:
    await store.insert_jobs(owned("a", 3, priority=0))
    await store.insert_jobs(owned("b", 2, priority=2))
    await store.insert_jobs(owned("a", 1, start=3, priority=2))
    assert await claim_ids(store, 1, n=6) == [
        "b00000",
        "a00003",
        "b00001",
        "a00000",
        "a00001",
        "a00002",
    ]


async def test_jobs_of_one_share_count_as_one_owner(store: Store) -> None:
    """A TaskDriver project's tasks share their creator's turns, whoever submits them."""

    def task(job_id: str, owner: str) -> NewJob:
        return dataclasses.replace(new_job(job_id, owner_id=owner), share_id="creator")

    await store.insert_jobs([task("t0", "agent-1"), task("t1", "agent-2"), task("t2", "agent-3")])
    await store.insert_jobs(owned("b", 2))
    assert await claim_ids(store, 5, n=1) == ["t0", "b00000", "t1", "b00001", "t2"]


async def test_a_batch_is_stored_in_submission_order(store: Store) -> None:
    jobs = [
        new_job("x", priority=0, owner_id="a"),
        new_job("y", priority=2, owner_id="b"),
        new_job("z", priority=0, owner_id="b"),
        new_job("w", priority=1, owner_id="a"),
    ]
    stored = await store.insert_jobs(jobs)
    seqs = [j.seq for j in stored]
    assert seqs == sorted(seqs)
    reread = {j.id: j.seq for j in await store.get_jobs(["x", "y", "z", "w"])}
    assert [reread[i] for i in ("x", "y", "z", "w")] == seqs
