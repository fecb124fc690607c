"""Claims: which jobs a claimer gets, in what order, and never the same job twice."""

from __future__ import annotations

import asyncio

from corral.domain.jobs import Outcome
from corral.domain.states import AttemptStatus, JobStatus
from corral.store.base import Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


async def test_claim_takes_highest_priority_then_oldest(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job("low-old", priority=0),
            new_job("high-1", priority=9),
            new_job("mid", priority=5),
            new_job("high-2", priority=9),
            new_job("neg", priority=-1),
        ]
    )
    first = await store.claim(claim_request(limit=3), NOW)
    assert [j.id for j in first] == ["high-1", "high-2", "mid"]
    rest = await store.claim(claim_request(limit=10), NOW)
    assert [j.id for j in rest] == ["low-old", "neg"]
    assert await store.claim(claim_request(limit=10), NOW) == []


async def test_claim_leases_the_job_and_opens_an_attempt(store: Store) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30)])
    [job] = await store.claim(claim_request("exec-7", principal_id="worker-7", ip="10.1.2.3"), NOW)
    assert job.status == JobStatus.RUNNING
    assert job.attempt == 1
    assert job.executor_id == "exec-7" and job.executor_ip == "10.1.2.3"
    assert job.lease_principal_id == "worker-7"
    assert job.started_at == NOW and job.lease_expires_at == NOW + 30
    assert await store.get_job("j1") == job
    [attempt] = await store.get_attempts("j1")
    assert (attempt.number, attempt.executor_id, attempt.status) == (
        1,
        "exec-7",
        AttemptStatus.RUNNING,
    )
    assert attempt.claimed_at == NOW and attempt.ended_at is None
    # A claim records the executor as seen, even one that never registered.
    executor = await store.get_executor("exec-7")
    assert executor is not None
    assert executor.last_heartbeat == NOW and executor.info.ip == "10.1.2.3"


async def test_claim_respects_limit(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i:02}") for i in range(12)])
    got = await store.claim(claim_request(limit=5), NOW)
    assert [j.id for j in got] == [f"j{i:02}" for i in range(5)]
    assert len(await store.claim(claim_request(limit=1), NOW)) == 1
    assert len(await store.claim(claim_request(limit=100), NOW)) == 6


async def test_claim_labels_must_all_be_offered(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job("none"),
            new_job("gpu", labels=("gpu",)),
            new_job("gpu-linux", labels=("linux", "gpu")),
            new_job("arm", labels=("arm",)),
        ]
    )
    plain = await store.claim(claim_request("e-plain", limit=10), NOW)
    assert [j.id for j in plain] == ["none"]

    await store.insert_jobs([new_job("none-2")])
    gpu_only = await store.claim(claim_request("e-gpu", limit=10, labels=frozenset({"gpu"})), NOW)
    assert [j.id for j in gpu_only] == ["gpu", "none-2"]

    both = await store.claim(
        claim_request("e-both", limit=10, labels=frozenset({"gpu", "linux", "x86"})), NOW
    )
    assert [j.id for j in both] == ["gpu-linux"]
    pending = await store.get_job("arm")
    assert pending is not None and pending.status == JobStatus.PENDING


async def test_claim_runnable_only_skips_jobs_for_external_agents(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job("agent", command=None, instructions="do it by hand"),
            new_job("shell"),
        ]
    )
    got = await store.claim(claim_request(limit=10, runnable_only=True), NOW)
    assert [j.id for j in got] == ["shell"]
    got = await store.claim(claim_request("puller", limit=10), NOW)
    assert [j.id for j in got] == ["agent"]


async def test_claim_filters_by_project(store: Store) -> None:
    await store.insert_jobs(
        [new_job("a", project_id="p1"), new_job("b", project_id="p2"), new_job("c")]
    )
    got = await store.claim(claim_request(limit=10, project_id="p2"), NOW)
    assert [j.id for j in got] == ["b"]


async def test_claim_respects_backoff_and_next_run_after(store: Store) -> None:
    await store.insert_jobs([new_job("j1")])
    await store.claim(claim_request(), NOW)
    failed = await store.finish(
        "j1", ref(), Outcome(JobStatus.FAILED, exit_code=1, retry=True), NOW, POLICY
    )
    assert failed.status == JobStatus.PENDING
    assert failed.run_after == NOW + 10

    assert await store.next_run_after(NOW) == NOW + 10
    assert await store.claim(claim_request(), NOW + 9.9) == []
    assert await store.next_run_after(NOW + 10) is None
    [again] = await store.claim(claim_request(), NOW + 10)
    assert again.id == "j1" and again.attempt == 2
    assert await store.next_run_after(NOW + 10) is None


async def test_concurrent_claimers_never_share_a_job(store: Store) -> None:
    total = 200
    await store.insert_jobs([new_job(f"job-{i:03}", priority=i % 3) for i in range(total)])

    async def claimer(n: int) -> list[str]:
        mine: list[str] = []
        while batch := await store.claim(claim_request(f"exec-{n}", limit=5), NOW):
            assert all(j.executor_id == f"exec-{n}" for j in batch)
            mine += [j.id for j in batch]
        return mine

    results = await asyncio.gather(*(claimer(n) for n in range(8)))
    claimed = [job_id for mine in results for job_id in mine]
    assert len(claimed) == total
    assert set(claimed) == {f"job-{i:03}" for i in range(total)}
    if store.backend == "postgres":
        # Every claimer's first claim ran concurrently through its own pooled
        # connection, and there were jobs enough for all of them.
        assert all(results)
    counts = await store.count_by_status()
    assert counts == {JobStatus.RUNNING: total}
    for job_id in ("job-000", "job-101", "job-199"):
        assert len(await store.get_attempts(job_id)) == 1
