"""The lease lifecycle: renew, finish, release, cancel, reap, and fencing of stale attempts."""

from __future__ import annotations

from typing import Any

import pytest

from corral.domain.jobs import AttemptRef, Job, Outcome
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import CorralError, InvalidTransition, NotFound, StaleAttempt
from corral.store.base import Store
from corral.store.leases_port import Report
from tests.contract.contract_support import BACKOFF, NOW, POLICY, claim_request, new_job, ref


async def _claimed(store: Store, job_id: str = "j1", executor: str = "exec-1", **kw: Any) -> Job:
    await store.insert_jobs([new_job(job_id, **kw)])
    [job] = await store.claim(claim_request(executor), NOW)
    assert job.id == job_id
    return job


async def test_renew_lease_extends_from_now(store: Store) -> None:
    await _claimed(store, lease_seconds=30)
    renewed = await store.renew_lease("j1", ref(), NOW + 20)
    assert renewed.lease_expires_at == NOW + 50
    stored = await store.get_job("j1")
    assert stored is not None and stored.lease_expires_at == NOW + 50
    executor = await store.get_executor("exec-1")
    assert executor is not None and executor.last_heartbeat == NOW + 20
    # An attempt-less ref (executor-queue clients) is fenced by the executor id alone.
    assert (await store.renew_lease("j1", ref(attempt=None), NOW + 25)).lease_expires_at == NOW + 55
    with pytest.raises(NotFound):
        await store.renew_lease("nope", ref(), NOW)


async def test_renew_executor_leases_renews_only_what_it_holds(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i}", lease_seconds=30) for i in range(4)])
    mine = await store.claim(claim_request("exec-1", limit=3), NOW)
    [theirs] = await store.claim(claim_request("exec-2"), NOW)
    held = [(j.id, j.attempt) for j in mine] + [(theirs.id, 1), ("ghost", 1), ("j0", 7)]

    renewed = await store.renew_executor_leases("exec-1", held, NOW + 10)
    assert sorted(j.id for j in renewed) == ["j0", "j1", "j2"]
    assert all(j.lease_expires_at == NOW + 40 for j in renewed)
    other = await store.get_job(theirs.id)
    assert other is not None and other.lease_expires_at == NOW + 30
    executor = await store.get_executor("exec-1")
    assert executor is not None and executor.last_heartbeat == NOW + 10
    assert await store.renew_executor_leases("exec-1", [], NOW + 11) == []


async def test_finish_completed(store: Store) -> None:
    await _claimed(store)
    outcome = Outcome(
        JobStatus.COMPLETED, exit_code=0, result={"answer": 42}, stdout="out\n", stderr="err"
    )
    done = await store.finish("j1", ref(), outcome, NOW + 5, POLICY)
    assert done.status == JobStatus.COMPLETED
    assert (done.exit_code, done.result, done.finished_at) == (0, {"answer": 42}, NOW + 5)
    assert done.lease_expires_at is None
    assert done.stdout.size == 4 and done.stderr.size == 3
    assert await store.get_job("j1") == done
    [attempt] = await store.get_attempts("j1")
    assert attempt.status == AttemptStatus.COMPLETED
    assert (attempt.ended_at, attempt.exit_code) == (NOW + 5, 0)
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b"out\n"
    assert (await store.read_output("j1", "stderr", 0, 100)).data == b"err"
    executor = await store.get_executor("exec-1")
    assert executor is not None and executor.jobs_completed == 1

    # The same attempt reporting again meets a finished job.
    with pytest.raises(InvalidTransition):
        await store.finish("j1", ref(), outcome, NOW + 6, POLICY)


async def test_finish_failed_is_final_without_retry(store: Store) -> None:
    await _claimed(store, max_retries=3)
    outcome = Outcome(JobStatus.FAILED, exit_code=2, error_message="boom")
    failed = await store.finish("j1", ref(), outcome, NOW + 1, POLICY)
    assert failed.status == JobStatus.FAILED
    assert (failed.exit_code, failed.error_message, failed.finished_at) == (2, "boom", NOW + 1)
    assert await store.get_job("j1") == failed
    [attempt] = await store.get_attempts("j1")
    assert attempt.status == AttemptStatus.FAILED and attempt.error_message == "boom"
    executor = await store.get_executor("exec-1")
    assert executor is not None and executor.jobs_completed == 0


async def test_finish_failed_with_retry_requeues_until_retries_run_out(store: Store) -> None:
    await _claimed(store, max_retries=1)
    outcome = Outcome(JobStatus.FAILED, exit_code=1, error_message="flaky", retry=True)
    requeued = await store.finish("j1", ref(), outcome, NOW, POLICY)
    assert requeued.status == JobStatus.PENDING
    assert requeued.run_after == NOW + BACKOFF and requeued.finished_at is None
    assert await store.get_job("j1") == requeued

    [again] = await store.claim(claim_request(), NOW + BACKOFF)
    assert again.attempt == 2 and again.exit_code is None and again.error_message is None
    final = await store.finish("j1", ref(attempt=2), outcome, NOW + BACKOFF + 1, POLICY)
    assert final.status == JobStatus.FAILED
    assert [a.status for a in await store.get_attempts("j1")] == [
        AttemptStatus.FAILED,
        AttemptStatus.FAILED,
    ]


async def _make_stale(store: Store) -> Job:
    """j1's attempt 1 (exec-1) was reaped; exec-2 now holds attempt 2."""
    await _claimed(store, lease_seconds=30)
    await store.reap_expired(NOW + 31, POLICY, 10)
    [current] = await store.claim(claim_request("exec-2"), NOW + 31 + BACKOFF)
    assert current.attempt == 2
    return current


async def test_stale_attempt_is_refused_and_changes_nothing(store: Store) -> None:
    current = await _make_stale(store)
    await store.append_output("j1", ref("exec-2", 2), "stdout", b"current")
    before = await store.get_job("j1")
    attempts_before = await store.get_attempts("j1")
    done = Outcome(JobStatus.COMPLETED, exit_code=0, stdout="stale output")

    for stale in (ref("exec-1", 1), ref("exec-1", None), ref("exec-2", 1), ref("exec-1", 2)):
        with pytest.raises(StaleAttempt):
            await store.finish("j1", stale, done, NOW + 50, POLICY)
        with pytest.raises(StaleAttempt):
            await store.renew_lease("j1", stale, NOW + 50)
        with pytest.raises(StaleAttempt):
            await store.append_output("j1", stale, "stdout", b"stale")
        with pytest.raises(StaleAttempt):
            await store.release("j1", stale, NOW + 50)

    assert await store.get_job("j1") == before
    assert await store.get_attempts("j1") == attempts_before
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b"current"
    assert before is not None and before.lease_expires_at == current.lease_expires_at


async def test_finish_many_mixes_good_and_bad_reports(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i}", max_retries=0) for i in range(4)])
    await store.claim(claim_request("exec-1", limit=3), NOW)  # j0, j1, j2
    await store.claim(claim_request("exec-2", limit=1), NOW)  # j3
    ok = Outcome(JobStatus.COMPLETED, exit_code=0, stdout="fine")
    reports = [
        Report("j0", ref("exec-1", 1), ok),
        Report("j1", ref("exec-1", 2), ok),  # wrong attempt
        Report("ghost", ref("exec-1", 1), ok),
        Report("j2", ref("exec-1", 1), Outcome(JobStatus.FAILED, exit_code=3)),
        Report("j0", ref("exec-1", 1), ok),  # j0 is already completed by now
        Report("j3", ref("exec-2", 1), ok),
    ]
    results = await store.finish_many(reports, NOW + 1, POLICY)

    assert isinstance(results[0], Job) and results[0].status == JobStatus.COMPLETED
    assert isinstance(results[1], StaleAttempt)
    assert isinstance(results[2], NotFound)
    assert isinstance(results[3], Job) and results[3].status == JobStatus.FAILED
    assert isinstance(results[4], InvalidTransition)
    assert isinstance(results[5], Job) and results[5].status == JobStatus.COMPLETED

    statuses = {j.id: j.status for j in await store.get_jobs(["j0", "j1", "j2", "j3"])}
    assert statuses == {
        "j0": JobStatus.COMPLETED,
        "j1": JobStatus.RUNNING,
        "j2": JobStatus.FAILED,
        "j3": JobStatus.COMPLETED,
    }
    assert (await store.read_output("j0", "stdout", 0, 100)).data == b"fine"
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b""
    completed = {e.info.executor_id: e.jobs_completed for e in await store.list_executors()}
    assert completed == {"exec-1": 1, "exec-2": 1}
    [a1] = await store.get_attempts("j1")
    assert a1.status == AttemptStatus.RUNNING
    assert await store.finish_many([], NOW, POLICY) == []


async def test_finish_rejects_a_non_final_outcome(store: Store) -> None:
    await _claimed(store)
    results = await store.finish_many(
        [Report("j1", ref(), Outcome(JobStatus.RUNNING, stdout="x"))], NOW, POLICY
    )
    assert isinstance(results[0], CorralError)
    job = await store.get_job("j1")
    assert job is not None and job.status == JobStatus.RUNNING and job.stdout.size == 0


async def test_release_requeues_without_spending_a_retry(store: Store) -> None:
    await _claimed(store, max_retries=1, lease_seconds=30)
    released = await store.release("j1", ref(), NOW + 1)
    assert released.status == JobStatus.PENDING
    assert (released.releases, released.attempt, released.lease_expires_at) == (1, 1, None)
    stored = await store.get_job("j1")
    assert stored is not None and stored.status == JobStatus.PENDING and stored.releases == 1
    [attempt] = await store.get_attempts("j1")
    assert attempt.status == AttemptStatus.RELEASED and attempt.ended_at == NOW + 1

    [again] = await store.claim(claim_request(), NOW + 1)  # no backoff after a release
    assert again.attempt == 2
    # Two attempts made, one released: the lost one is the first real try, so one
    # retry remains and the job is requeued rather than failed.
    [reaped] = await store.reap_expired(NOW + 40, POLICY, 10)
    assert reaped.status == JobStatus.PENDING


async def test_cancel_pending_running_and_finished(store: Store) -> None:
    await store.insert_jobs([new_job("running", priority=2), new_job("done", priority=1)])
    await store.claim(claim_request(limit=2), NOW)
    await store.finish("done", ref(), Outcome(JobStatus.COMPLETED, 0), NOW, POLICY)
    await store.insert_jobs([new_job("queued")])

    cancelled = await store.cancel("queued", NOW + 1)
    assert cancelled.status == JobStatus.CANCELLED and cancelled.finished_at == NOW + 1
    assert await store.get_job("queued") == cancelled
    assert await store.claim(claim_request(), NOW + 2) == []
    with pytest.raises(InvalidTransition):
        await store.cancel("queued", NOW + 2)

    marked = await store.cancel("running", NOW + 1)
    assert marked.status == JobStatus.RUNNING and marked.cancel_requested
    assert await store.get_job("running") == marked

    done_before = await store.get_job("done")
    with pytest.raises(InvalidTransition):
        await store.cancel("done", NOW + 3)
    assert await store.get_job("done") == done_before
    with pytest.raises(NotFound):
        await store.cancel("ghost", NOW)


async def test_reap_requeues_with_a_new_attempt_then_fails(store: Store) -> None:
    await _claimed(store, max_retries=1, lease_seconds=30)
    assert await store.reap_expired(NOW + 30, POLICY, 10) == []  # not yet past the lease

    [requeued] = await store.reap_expired(NOW + 31, POLICY, 10)
    assert requeued.status == JobStatus.PENDING and requeued.run_after == NOW + 31 + BACKOFF
    assert await store.get_job("j1") == requeued
    [lost] = await store.get_attempts("j1")
    assert lost.status == AttemptStatus.LOST and lost.ended_at == NOW + 31
    assert lost.error_message == "lease expired"

    assert await store.claim(claim_request(), NOW + 31) == []
    [second] = await store.claim(claim_request("exec-2"), NOW + 31 + BACKOFF)
    assert second.attempt == 2

    t = NOW + 31 + BACKOFF + 31
    [failed] = await store.reap_expired(t, POLICY, 10)
    assert failed.status == JobStatus.FAILED and failed.finished_at == t
    assert failed.error_message is not None and "no retries left" in failed.error_message
    assert await store.get_job("j1") == failed
    assert [a.status for a in await store.get_attempts("j1")] == [
        AttemptStatus.LOST,
        AttemptStatus.LOST,
    ]


async def test_reap_honours_a_cancel_request_and_the_limit(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i}", lease_seconds=30) for i in range(3)])
    await store.claim(claim_request(limit=3), NOW)
    await store.cancel("j0", NOW + 1)
    first = await store.reap_expired(NOW + 31, POLICY, 2)
    assert len(first) == 2
    rest = await store.reap_expired(NOW + 31, POLICY, 2)
    assert len(rest) == 1
    by_id = {j.id: j for j in first + rest}
    assert by_id["j0"].status == JobStatus.CANCELLED
    assert by_id["j1"].status == by_id["j2"].status == JobStatus.PENDING
    [attempt] = await store.get_attempts("j0")
    assert attempt.status == AttemptStatus.CANCELLED


async def test_fence_ignores_principal_when_not_given(store: Store) -> None:
    await _claimed(store)
    renewed = await store.renew_lease("j1", AttemptRef("exec-1", 1, "worker-1"), NOW + 1)
    assert renewed.lease_expires_at is not None


async def test_item9_a_cancel_requested_before_a_release_ends_the_job_cancelled(
    store: Store,
) -> None:
    await _claimed(store, lease_seconds=30)
    await store.cancel("j1", NOW + 1)  # claimed but not started: only marked

    released = await store.release("j1", ref(), NOW + 2)

    assert released.status == JobStatus.CANCELLED and released.finished_at == NOW + 2
    assert released.lease_expires_at is None
    assert await store.get_job("j1") == released
    [attempt] = await store.get_attempts("j1")
    assert attempt.status == AttemptStatus.CANCELLED and attempt.ended_at == NOW + 2
    assert await store.claim(claim_request("exec-2"), NOW + 3) == []  # never runs
    assert await store.reap_expired(NOW + 100, POLICY, 10) == []


async def test_a_batch_of_reports_is_decided_in_order_whatever_path_each_takes(
    store: Store,
) -> None:
    """Plain reports are written by their own statements, the others decided in Python:
    a plain report after another report on the same job still sees that report's end."""
    await store.insert_jobs([new_job(f"j{i}", max_retries=1) for i in range(3)])
    await store.claim(claim_request("exec-1", limit=3), NOW)
    done = Outcome(JobStatus.COMPLETED, exit_code=0)
    reports = [
        Report("j0", ref(), Outcome(JobStatus.FAILED, exit_code=1, retry=True)),  # requeued
        Report("j0", ref(), done),  # that attempt no longer holds the job
        Report("j1", ref(), done),
        Report("j2", ref("exec-2"), done),  # another executor's lease
    ]
    results = await store.finish_many(reports, NOW + 1, POLICY)
    assert isinstance(results[0], Job) and results[0].status == JobStatus.PENDING
    assert isinstance(results[1], StaleAttempt)
    assert isinstance(results[2], Job) and results[2].status == JobStatus.COMPLETED
    assert isinstance(results[3], StaleAttempt)
    statuses = {j.id: j.status for j in await store.get_jobs(["j0", "j1", "j2"])}
    assert statuses == {
        "j0": JobStatus.PENDING,
        "j1": JobStatus.COMPLETED,
        "j2": JobStatus.RUNNING,
    }
    completed = {e.info.executor_id: e.jobs_completed for e in await store.list_executors()}
    assert completed == {"exec-1": 1}
