"""CMD Executor's view of jobs and workers: camelCase, its status names, ISO times."""

from __future__ import annotations

from corral.domain.jobs import Job
from corral.domain.states import JobStatus

# CMD Executor calls a waiting job "queued"; the other names are the core's own.
STATUS_NAMES: dict[JobStatus, str] = {
    JobStatus.PENDING: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
STATUS_BY_NAME: dict[str, JobStatus] = {name: status for status, name in STATUS_NAMES.items()}


def job_status(job: Job) -> str:
    return STATUS_NAMES[job.status]
