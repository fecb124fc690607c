"""Issue 11 item 5: a job its worker never started, reaped while the worker was cut off
from the dispatcher, is handed back when the worker returns, spending no retry."""

from __future__ import annotations

import pytest

from corral.domain.jobs import AttemptRef
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import StaleAttempt
from corral.store.base import Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


async def test_item5_reaped_unstarted_job_with_no_retries_is_returned_not_failed(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("j1", max_retries=0, lease_seconds=30)])
    await store.claim(claim_request(), NOW)
    [failed] = await store.reap_expired(NOW + 31, POLICY, 10)
    assert failed.status == JobStatus.FAILED  # the dispatcher alone cannot know better

    returned = await store.return_unstarted("j1", ref(), NOW + 40)
    assert (returned.status, returned.releases, returned.finished_at) == (
        JobStatus.PENDING,
        1,
        None,
    )
    assert returned.error_message is None
    assert await store.get_job("j1") == returned
    [attempt] = await store.get_attempts("j1")
    assert attempt.status == AttemptStatus.RELEASED
    # Its one allowed run is still ahead of it: only losing that one fails the job.
    [again] = await store.claim(claim_request(), NOW + 40)
    assert again.attempt == 2
    [reaped] = await store.reap_expired(NOW + 71, POLICY, 10)
    assert reaped.status == JobStatus.FAILED


async def test_item5_reaped_unstarted_job_is_requeued_at_once_without_spending_a_retry(
    store: Store,
) -> None:
    await store.insert_jobs([new_job("j1", max_retries=1, lease_seconds=30)])
    await store.claim(claim_request(), NOW)
    [requeued] = await store.reap_expired(NOW + 31, POLICY, 10)
    assert requeued.run_after > NOW + 31  # backed off, a retry spent
    returned = await store.return_unstarted("j1", ref(), NOW + 32)
    assert (returned.status, returned.run_after, returned.releases) == (JobStatus.PENDING, 0, 1)
    [again] = await store.claim(claim_request(), NOW + 32)  # no backoff
    assert again.attempt == 2
    [reaped] = await store.reap_expired(NOW + 63, POLICY, 10)
    assert reaped.status == JobStatus.PENDING  # one real try made: one retry left


@pytest.mark.parametrize(
    "late",
    [
        ref("exec-2"),  # another executor's attempt
        ref(attempt=2),  # not the reaped attempt
        AttemptRef(executor_id="exec-1", attempt=1, principal_id="someone-else"),
    ],
)
async def test_item5_late_release_only_by_the_reaped_attempt(
    store: Store, late: AttemptRef
) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30)])
    await store.claim(claim_request(), NOW)
    await store.reap_expired(NOW + 31, POLICY, 10)
    with pytest.raises(StaleAttempt):
        await store.return_unstarted("j1", late, NOW + 32)


async def test_item5_no_late_release_once_claimed_again_or_cancelled(store: Store) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30), new_job("j2", lease_seconds=30)])
    await store.claim(claim_request(limit=2), NOW)
    await store.cancel("j2", NOW + 1)  # a cancel request: the reaper cancels it
    await store.reap_expired(NOW + 31, POLICY, 10)
    await store.claim(claim_request("exec-2"), NOW + 100)  # j1 runs elsewhere now
    cancelled = await store.get_job("j2")
    assert cancelled is not None and cancelled.status == JobStatus.CANCELLED
    for job_id in ("j1", "j2"):
        with pytest.raises(StaleAttempt):
            await store.return_unstarted(job_id, ref(), NOW + 101)
    # A running attempt is not reaped: nothing to return.
    with pytest.raises(StaleAttempt):
        await store.return_unstarted("j1", ref("exec-2", 2), NOW + 101)
