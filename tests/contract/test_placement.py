"""Placement (issue 12): a claim hands out a job that asks for resources only where
they fit the claimer's free capacity, on both stores, atomically with the claim."""

from __future__ import annotations

import asyncio
import dataclasses

from corral.domain.jobs import NewJob, Outcome, Resources
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorInfo
from corral.store.base import Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


def asking(
    job_id: str,
    *,
    cpus: float | None = None,
    memory_mb: int | None = None,
    network: bool = True,
    priority: int = 0,
) -> NewJob:
    job = new_job(job_id, priority=priority)
    res = Resources(cpus=cpus, memory_mb=memory_mb)
    spec = dataclasses.replace(job.spec, resources=res, network=network)
    return dataclasses.replace(job, spec=spec)


async def worker(
    store: Store,
    executor_id: str = "exec-1",
    *,
    cpus: float = 2.0,
    memory_mb: int = 1024,
    network_control: bool = False,
) -> None:
    info = ExecutorInfo(
        executor_id=executor_id,
        principal_id="worker-1",
        cpu_count=int(cpus),
        memory_mb=memory_mb,
        cpus=cpus,
        isolation="sandbox" if network_control else "none",
        network_control=network_control,
    )
    await store.upsert_executor(info, NOW, draining=False)


async def test_item_placement_two_full_memory_jobs_never_held_together(store: Store) -> None:
    await worker(store, memory_mb=1024)
    await store.insert_jobs([asking("a", memory_mb=1024), asking("b", memory_mb=1024)])
    assert [j.id for j in await store.claim(claim_request(limit=5), NOW)] == ["a"]
    assert await store.claim(claim_request(limit=5), NOW) == []
    await store.finish("a", ref(), Outcome(JobStatus.COMPLETED, exit_code=0), NOW, POLICY)
    assert [j.id for j in await store.claim(claim_request(limit=5), NOW)] == ["b"]


async def test_item_placement_one_claim_never_overcommits(store: Store) -> None:
    await worker(store, cpus=2.0)
    await store.insert_jobs([asking(f"j{i}", cpus=0.75) for i in range(4)])
    got = await store.claim(claim_request(limit=10), NOW)
    assert [j.id for j in got] == ["j0", "j1"]


async def test_item_placement_racing_claims_never_overcommit(store: Store) -> None:
    await worker(store, memory_mb=1000)
    await store.insert_jobs([asking(f"j{i:02}", memory_mb=300) for i in range(12)])
    results = await asyncio.gather(*(store.claim(claim_request(limit=2), NOW) for _ in range(8)))
    held = [job for got in results for job in got]
    assert len(held) == 3  # 3 x 300 fits in 1000, a fourth does not
    assert len({j.id for j in held}) == 3


async def test_item_placement_too_big_job_waits_while_a_fitting_one_runs(store: Store) -> None:
    await worker(store, cpus=2.0)
    await store.insert_jobs([asking("huge", cpus=64, priority=9), asking("small", cpus=1)])
    assert [j.id for j in await store.claim(claim_request(limit=1), NOW)] == ["small"]
    huge = await store.get_job("huge")
    assert huge is not None and huge.status is JobStatus.PENDING


async def test_item_placement_jobs_without_resources_reserve_nothing(store: Store) -> None:
    await worker(store, memory_mb=100)
    await store.insert_jobs([asking("full", memory_mb=100), new_job("plain-1"), new_job("plain-2")])
    got = await store.claim(claim_request(limit=10), NOW)
    assert [j.id for j in got] == ["full", "plain-1", "plain-2"]


async def test_item_placement_no_network_only_to_network_control(store: Store) -> None:
    await worker(store, "open", network_control=False)
    await worker(store, "sandboxed", network_control=True)
    await store.insert_jobs([asking("offline", network=False), new_job("online")])
    got = await store.claim(claim_request("open", limit=5), NOW)
    assert [j.id for j in got] == ["online"]
    got = await store.claim(claim_request("sandboxed", limit=5), NOW)
    assert [j.id for j in got] == ["offline"]


async def test_item_placement_unregistered_claimer_takes_no_reserving_job(store: Store) -> None:
    await store.insert_jobs([asking("big", memory_mb=10), new_job("plain")])
    got = await store.claim(claim_request("stranger", limit=5), NOW)
    assert [j.id for j in got] == ["plain"]


async def test_item_placement_spec_round_trips(store: Store) -> None:
    await store.insert_jobs([asking("j", cpus=1.5, memory_mb=64, network=False)])
    job = await store.get_job("j")
    assert job is not None
    assert job.spec.resources == Resources(cpus=1.5, memory_mb=64)
    assert job.spec.network is False


async def test_item_placement_executor_capacity_round_trips(store: Store) -> None:
    await worker(store, "w", cpus=1.5, memory_mb=512, network_control=True)
    executor = await store.get_executor("w")
    assert executor is not None
    info = executor.info
    assert (info.cpus, info.memory_mb, info.isolation, info.network_control) == (
        1.5,
        512,
        "sandbox",
        True,
    )


async def test_item_cgroup_leftover_processes_stored_on_the_attempt(store: Store) -> None:
    await store.insert_jobs([new_job("j"), new_job("k")])
    await store.claim(claim_request(limit=2), NOW)
    done = Outcome(JobStatus.COMPLETED, exit_code=0, leftover_processes=2)
    await store.finish("j", ref(), done, NOW, POLICY)
    await store.finish("k", ref(), Outcome(JobStatus.FAILED, exit_code=1), NOW, POLICY)
    [attempt] = await store.get_attempts("j")
    assert attempt.leftover_processes == 2
    [attempt] = await store.get_attempts("k")
    assert attempt.leftover_processes is None
