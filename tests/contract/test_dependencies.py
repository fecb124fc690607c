"""Jobs that wait for other jobs (issue 15), on both stores: blocked jobs are never
claimed, the last dependency's end decides them, cancels cascade, and the stores'
trigger agrees with ``domain.dependencies.decide`` case by case."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from corral.domain.dependencies import RunIf, Verdict, decide
from corral.domain.jobs import NewJob, Outcome
from corral.domain.states import JobStatus
from corral.errors import InvalidInput
from corral.store.base import JobFilter, Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref

OK = Outcome(status=JobStatus.COMPLETED, exit_code=0)
FAIL = Outcome(status=JobStatus.FAILED, exit_code=1)


def after(job_id: str, *parents: str, run_if: RunIf = RunIf.SUCCESS) -> NewJob:
    return dataclasses.replace(new_job(job_id), depends_on=parents, run_if=run_if)


async def run(store: Store, job_id: str, outcome: Outcome = OK) -> None:
    """Claim exactly ``job_id`` (it must be the only claimable job) and finish it."""
    [job] = await store.claim(claim_request(limit=1), NOW)
    assert job.id == job_id
    await store.finish(job_id, ref(attempt=job.attempt), outcome, NOW, POLICY)


async def status(store: Store, job_id: str) -> tuple[JobStatus, bool]:
    job = await store.get_job(job_id)
    assert job is not None
    return job.status, job.blocked


async def test_item15_blocked_job_is_never_claimed_until_its_parent_completes(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("a"), after("b", "a")])
    assert await status(store, "b") == (JobStatus.PENDING, True)
    [claimed] = await store.claim(claim_request(limit=10), NOW)
    assert claimed.id == "a"
    assert await store.claim(claim_request(limit=10), NOW) == []  # b is blocked
    await store.finish("a", ref(), OK, NOW, POLICY)
    assert await status(store, "b") == (JobStatus.PENDING, False)
    a = await store.get_job("a")
    assert a is not None and a.has_dependants
    await run(store, "b")
    deps = await store.get_dependencies("a")
    assert (deps.parents, deps.children) == ([], ["b"])
    assert (await store.get_dependencies("b")).parents == ["a"]


async def test_item15_failed_parent_cancels_the_chain_naming_the_decider(store: Store) -> None:
    await store.insert_jobs([new_job("a"), after("b", "a"), after("c", "b"), after("d", "c")])
    await run(store, "a", FAIL)
    for job_id, decider in (("b", "a failed"), ("c", "b cancelled"), ("d", "c cancelled")):
        job = await store.get_job(job_id)
        assert job is not None and job.status == JobStatus.CANCELLED
        assert job.error_message == f"not run: dependency {decider}"
        assert job.finished_at is not None
    assert await store.claim(claim_request(limit=10), NOW) == []


async def test_item15_cancelling_a_blocked_job_cascades(store: Store) -> None:
    await store.insert_jobs([new_job("a"), after("b", "a"), after("c", "b")])
    await store.cancel("b", NOW)
    assert (await status(store, "c"))[0] == JobStatus.CANCELLED


async def test_item15_run_if_failure_and_always(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job("a"),
            new_job("b"),
            after("on-failure", "a", "b", run_if=RunIf.FAILURE),
            after("cleanup", "a", "b", run_if=RunIf.ALWAYS),
            after("on-success", "a", "b"),
        ]
    )
    await run(store, "a", FAIL)  # decides on-success at once; the others wait for b
    assert (await status(store, "on-success"))[0] == JobStatus.CANCELLED
    assert await status(store, "on-failure") == (JobStatus.PENDING, True)
    await run(store, "b")
    claimed = await store.claim(claim_request(limit=10), NOW)
    assert sorted(j.id for j in claimed) == ["cleanup", "on-failure"]


async def test_item15_run_if_failure_cancelled_when_every_parent_completed(store: Store) -> None:
    await store.insert_jobs([new_job("a"), after("f", "a", run_if=RunIf.FAILURE)])
    await run(store, "a")
    job = await store.get_job("f")
    assert job is not None and job.status == JobStatus.CANCELLED
    assert job.error_message == "not run: every dependency completed (the last was a)"


async def test_item15_decided_at_submit(store: Store) -> None:
    await store.insert_jobs([new_job("ok"), new_job("bad")])
    await run(store, "ok")
    await run(store, "bad", FAIL)
    inserted = await store.insert_jobs(
        [
            after("runs", "ok"),
            after("cancelled", "ok", "bad"),
            after("also-cancelled", "cancelled"),  # its parent is decided in this batch
            after("handler", "bad", run_if=RunIf.FAILURE),
        ]
    )
    assert [(j.status, j.blocked) for j in inserted] == [
        (JobStatus.PENDING, False),
        (JobStatus.CANCELLED, False),
        (JobStatus.CANCELLED, False),
        (JobStatus.PENDING, False),
    ]
    assert inserted[1].error_message == "not run: dependency bad failed"
    claimed = await store.claim(claim_request(limit=10), NOW)
    assert sorted(j.id for j in claimed) == ["handler", "runs"]


async def test_item15_unknown_dependency_inserts_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput, match="nope"):
        await store.insert_jobs([new_job("x"), after("y", "x", "nope")])
    assert await store.get_job("x") is None


async def test_item15_trigger_agrees_with_domain_decide(store: Store) -> None:
    """Every mix of three parents' outcomes, each run_if: the store's verdict (after the
    last parent ends) is the domain's."""
    outcomes = {"completed": OK, "failed": FAIL}
    cases = list(itertools.product(RunIf, itertools.product(outcomes, repeat=3)))
    parents = [new_job(f"p{i}-{k}") for i in range(len(cases)) for k in range(3)]
    children = [
        after(f"c{i}", *(f"p{i}-{k}" for k in range(3)), run_if=run_if)
        for i, (run_if, _) in enumerate(cases)
    ]
    await store.insert_jobs(parents + children)
    claimed = {j.id: j for j in await store.claim(claim_request(limit=100), NOW)}
    claimed.update({j.id: j for j in await store.claim(claim_request(limit=100), NOW)})
    assert len(claimed) == len(parents)
    for i, (_, ends) in enumerate(cases):
        for k, end in enumerate(ends):
            job_id = f"p{i}-{k}"
            await store.finish(job_id, ref(attempt=1), outcomes[end], NOW, POLICY)
    for i, (run_if, ends) in enumerate(cases):
        job = await store.get_job(f"c{i}")
        assert job is not None
        verdict = decide(run_if, 0, sum(e == "failed" for e in ends))
        expected = JobStatus.CANCELLED if verdict is Verdict.CANCEL else JobStatus.PENDING
        assert (job.status, job.blocked) == (expected, False), (run_if, ends)


@pytest.mark.slow
async def test_item15_fan_out_fan_in_of_1000_jobs(store: Store) -> None:
    """root -> 1,000 leaves -> join: the join is claimable only after the last leaf."""
    leaves = [after(f"leaf{i:04}", "root") for i in range(1000)]
    await store.insert_jobs([new_job("root"), *leaves, after("join", *(j.id for j in leaves))])
    await run(store, "root")
    done = 0
    while done < 1000:
        batch = await store.claim(claim_request(limit=100), NOW)
        assert batch and all(j.id.startswith("leaf") for j in batch)
        for job in batch:
            await store.finish(job.id, ref(attempt=1), OK, NOW, POLICY)
            done += 1
            if done < 1000:
                assert (await status(store, "join"))[1] is True
    await run(store, "join")


async def test_item15_cycle_is_refused_naming_it(store: Store) -> None:
    with pytest.raises(InvalidInput, match="cycle: x -> y -> x"):
        await store.insert_jobs([after("x", "y"), after("y", "x")])
    assert await store.get_job("x") is None


async def test_item15_deleting_a_waited_for_task_decides_its_dependants(store: Store) -> None:
    await store.insert_jobs([new_job("a"), after("b", "a"), after("c", "a", run_if=RunIf.ALWAYS)])
    await store.delete_job("a")
    b = await store.get_job("b")
    assert b is not None and b.status == JobStatus.CANCELLED
    assert b.error_message == "not run: dependency a cancelled"
    assert await status(store, "c") == (JobStatus.PENDING, False)


async def test_item15_blocked_jobs_count_and_list_as_pending(store: Store) -> None:
    await store.insert_jobs([new_job("a"), after("b", "a")])
    assert (await store.count_by_status())[JobStatus.PENDING] == 2
    listed, total = await store.list_jobs(JobFilter(status=JobStatus.PENDING), 10, 0)
    assert total == 2 and {j.id: j.blocked for j in listed} == {"a": False, "b": True}
