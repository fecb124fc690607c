"""Behaviour both adapters share because it is spelled in terms of other store operations."""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain.jobs import AttemptRef, ClaimRequest, Job, NewJob, Outcome
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus
from corral.errors import CorralError
from corral.store.base import IdempotencyRecord, Inserted, WorkflowRecord
from corral.store.leases_port import Report

# Issue 12: what a worker killed in an attempt's cgroup after its main process ended.
SET_LEFTOVERS = "UPDATE attempts SET leftover_processes = {} WHERE job_id = {} AND number = {}"


def leftover_rows(
    reports: Sequence[Report], results: Sequence[Job | CorralError]
) -> list[tuple[int, str, int]]:
    """(count, job id, attempt) for each accepted report that says how many it killed."""
    return [
        (report.outcome.leftover_processes, job.id, job.attempt)
        for report, job in zip(reports, results, strict=True)
        if isinstance(job, Job) and report.outcome.leftover_processes is not None
    ]


PLAIN = (JobStatus.COMPLETED, JobStatus.CANCELLED)  # decided without the retry policy


def is_plain(report: Report) -> bool:
    """Whether a report can be written without deciding anything in Python: no retry
    policy to consult, no output to fit under the cap (``*_finish.py``)."""
    outcome = report.outcome
    return outcome.status in PLAIN and not outcome.stdout and not outcome.stderr


class SharedOperations:
    async def insert_and_claim(
        self,
        jobs: Sequence[NewJob],
        claims: Sequence[ClaimRequest],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> Inserted:
        raise NotImplementedError

    async def insert_jobs(
        self,
        jobs: Sequence[NewJob],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> list[Job]:
        """An insert is an insert that hands nothing to waiting claims."""
        return (await self.insert_and_claim(jobs, (), idempotency, workflow)).jobs

    async def finish_many(
        self, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        raise NotImplementedError

    async def finish(
        self,
        job_id: str,
        ref: AttemptRef,
        outcome: Outcome,
        now: float | None,
        policy: RetryPolicy,
    ) -> Job:
        """One report is a batch of one; its refusal is raised rather than returned."""
        (result,) = await self.finish_many([Report(job_id, ref, outcome)], now, policy)
        if isinstance(result, CorralError):
            raise result
        return result
