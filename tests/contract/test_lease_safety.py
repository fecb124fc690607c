"""Leases that must never wedge the dispatcher: unbounded backoff, rows whose decision
fails, and lease times measured by the store's clock."""

from __future__ import annotations

import random

from corral.domain.jobs import Outcome
from corral.domain.retry import RetryPolicy
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import Unavailable
from corral.store.base import Store
from corral.store.leases_port import Report
from tests.contract.contract_support import NOW, claim_request, new_job, ref

RELEASES = 1030  # 2.0 ** 1025 overflows a float: the old backoff raised past ~1,025


async def _released_many_times(store: Store, job_id: str) -> float:
    """Claim and release ``job_id`` RELEASES times, then claim it once more; the time."""
    t = NOW
    for _ in range(RELEASES):
        [job] = await store.claim(claim_request(), t)
        await store.release(job_id, ref(attempt=job.attempt), t)
        t += 0.001
    [job] = await store.claim(claim_request(), t)
    assert job.attempt == RELEASES + 1
    return t


async def test_item10_backoff_after_a_thousand_releases_never_wedges_the_reaper(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("hot", lease_seconds=30)])
    t = await _released_many_times(store, "hot")
    await store.insert_jobs([new_job("later", lease_seconds=60)])
    await store.claim(claim_request("exec-2"), t)
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0, jitter=0.1)

    reaped = {j.id: j for j in await store.reap_expired(t + 61, policy, 10)}

    assert set(reaped) == {"hot", "later"}  # the hot row neither raised nor blocked the other
    assert reaped["hot"].status == JobStatus.PENDING
    assert t + 61 <= reaped["hot"].run_after <= t + 61 + 330  # bounded backoff


async def test_item10_a_result_batch_with_a_much_released_job_is_applied(store: Store) -> None:
    await store.insert_jobs([new_job("hot", lease_seconds=30)])
    t = await _released_many_times(store, "hot")
    await store.insert_jobs([new_job("other")])
    await store.claim(claim_request("exec-2"), t)
    failed = Outcome(JobStatus.FAILED, exit_code=1, retry=True)
    reports = [
        Report("hot", ref(attempt=RELEASES + 1), failed),
        Report("other", ref("exec-2", 1), Outcome(JobStatus.COMPLETED, 0)),
    ]
    hot, other = await store.finish_many(reports, t + 1, RetryPolicy())
    assert not isinstance(hot, Exception) and hot.status == JobStatus.PENDING
    assert not isinstance(other, Exception) and other.status == JobStatus.COMPLETED


class _Exploding(RetryPolicy):
    """A policy whose delay cannot be computed: stands for any row whose decision raises."""

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        raise ArithmeticError("no delay for you")


async def test_item10_a_row_whose_decision_fails_is_failed_alone(store: Store) -> None:
    await store.insert_jobs([new_job(f"j{i}", lease_seconds=30) for i in range(3)])
    await store.claim(claim_request(limit=3), NOW)
    await store.cancel("j2", NOW + 1)  # its verdict needs no delay: cancelled as usual

    reaped = {j.id: j for j in await store.reap_expired(NOW + 31, _Exploding(), 10)}

    assert {k: j.status for k, j in reaped.items()} == {
        "j0": JobStatus.FAILED,
        "j1": JobStatus.FAILED,
        "j2": JobStatus.CANCELLED,
    }
    assert "could not be requeued" in (reaped["j0"].error_message or "")
    assert await store.get_job("j0") == reaped["j0"]
    [attempt] = await store.get_attempts("j0")
    assert attempt.status == AttemptStatus.LOST
    assert await store.reap_expired(NOW + 32, _Exploding(), 10) == []


async def test_item10_a_report_whose_decision_fails_does_not_fail_its_batch(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("retrying"), new_job("done")])
    await store.claim(claim_request(limit=2), NOW)
    reports = [
        Report("retrying", ref(), Outcome(JobStatus.FAILED, exit_code=1, retry=True)),
        Report("done", ref(), Outcome(JobStatus.COMPLETED, 0, stdout="ok")),
    ]
    retrying, done = await store.finish_many(reports, NOW + 1, _Exploding())
    assert isinstance(retrying, Unavailable)
    assert not isinstance(done, Exception) and done.status == JobStatus.COMPLETED
    still = await store.get_job("retrying")
    assert still is not None and still.status == JobStatus.RUNNING  # nothing of it written
    assert (await store.read_output("done", "stdout", 0, 10)).data == b"ok"
