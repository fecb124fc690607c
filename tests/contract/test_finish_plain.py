"""Issue 13: a worker's plain report (completed or cancelled, no output), read by the
store's own clock, ends the job, its attempt and counts for its executor exactly as any
report does, and is fenced the same way. Both stores take their lean path for it
(``store/postgres/finish.py``, ``store/sqlite/finish.py``) and the general one when it
changes nothing, so the two paths must agree."""

from __future__ import annotations

import dataclasses

import pytest

from corral.domain.jobs import Job, Outcome
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import Forbidden, InvalidTransition, NotFound, StaleAttempt
from corral.store.base import Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


async def _running(store: Store, *ids: str) -> list[Job]:
    await store.insert_jobs([new_job(job_id) for job_id in ids])
    return await store.claim(claim_request("exec-1", limit=len(ids)), NOW)


async def test_item2_plain_report_ends_job_attempt_and_counts(store: Store) -> None:
    await _running(store, "done", "stopped")
    completed = Outcome(JobStatus.COMPLETED, exit_code=0, result={"n": 1}, leftover_processes=3)
    job = await store.finish("done", ref(), completed, None, POLICY)
    assert (job.status, job.exit_code, job.result) == (JobStatus.COMPLETED, 0, {"n": 1})
    assert job.lease_expires_at is None and job.finished_at is not None
    assert await store.get_job("done") == job
    [attempt] = await store.get_attempts("done")
    assert (attempt.status, attempt.exit_code, attempt.leftover_processes) == (
        AttemptStatus.COMPLETED,
        0,
        3,
    )
    assert attempt.ended_at == job.finished_at
    cancelled = Outcome(JobStatus.CANCELLED, exit_code=143, error_message="asked to stop")
    stopped = await store.finish("stopped", ref(), cancelled, None, POLICY)
    assert (stopped.status, stopped.error_message) == (JobStatus.CANCELLED, "asked to stop")
    [attempt] = await store.get_attempts("stopped")
    assert (attempt.status, attempt.exit_code, attempt.leftover_processes) == (
        AttemptStatus.CANCELLED,
        143,
        None,
    )
    executor = await store.get_executor("exec-1")
    assert executor is not None and executor.jobs_completed == 1  # the cancel does not count
    assert executor.last_heartbeat >= NOW


async def test_item2_plain_report_is_fenced_like_any_report(store: Store) -> None:
    [job] = await _running(store, "j1")
    done = Outcome(JobStatus.COMPLETED, exit_code=0)
    with pytest.raises(NotFound):
        await store.finish("nope", ref(), done, None, POLICY)
    with pytest.raises(StaleAttempt):
        await store.finish("j1", ref(attempt=2), done, None, POLICY)
    with pytest.raises(StaleAttempt):
        await store.finish("j1", ref("exec-2"), done, None, POLICY)
    not_the_holder = dataclasses.replace(ref(), principal_id="worker-2")
    with pytest.raises(Forbidden):
        await store.finish("j1", not_the_holder, done, None, POLICY)
    assert await store.get_job("j1") == job  # nothing written by any refusal
    holder = dataclasses.replace(ref(attempt=None), principal_id="worker-1")
    assert (await store.finish("j1", holder, done, None, POLICY)).status == JobStatus.COMPLETED
    with pytest.raises(InvalidTransition):
        await store.finish("j1", ref(), done, None, POLICY)
