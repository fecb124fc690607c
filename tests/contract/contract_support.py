"""Builders shared by the contract tests: jobs, claims and a deterministic retry policy."""

from __future__ import annotations

from corral.domain.jobs import AttemptRef, ClaimRequest, JobSpec, NewJob
from corral.domain.retry import RetryPolicy

NOW = 1_000_000.0
BACKOFF = 10.0
# No jitter, flat delay: a requeued job becomes claimable exactly BACKOFF seconds later.
POLICY = RetryPolicy(base_seconds=BACKOFF, max_seconds=BACKOFF, jitter=0.0)


def new_job(
    job_id: str,
    *,
    priority: int = 0,
    created_at: float = NOW - 100,
    labels: tuple[str, ...] = (),
    command: str | None = "echo hi",
    instructions: str | None = None,
    max_retries: int = 3,
    lease_seconds: float = 30.0,
    owner_id: str = "owner-1",
    project_id: str | None = None,
    batch_id: str | None = None,
    type: str = "shell",
    concurrency_key: str | None = None,
    concurrency_limit: int = 1,
) -> NewJob:
    spec = JobSpec(
        type=type,
        command=command,
        labels=labels,
        instructions=instructions,
        concurrency_key=concurrency_key,
        concurrency_limit=concurrency_limit,
    )
    return NewJob(
        id=job_id,
        spec=spec,
        priority=priority,
        owner_id=owner_id,
        created_at=created_at,
        max_retries=max_retries,
        lease_seconds=lease_seconds,
        project_id=project_id,
        batch_id=batch_id,
    )


def claim_request(
    executor_id: str = "exec-1",
    *,
    limit: int = 1,
    labels: frozenset[str] = frozenset(),
    runnable_only: bool = False,
    project_id: str | None = None,
    principal_id: str = "worker-1",
    ip: str | None = "10.0.0.1",
) -> ClaimRequest:
    return ClaimRequest(
        executor_id=executor_id,
        principal_id=principal_id,
        executor_ip=ip,
        labels=labels,
        limit=limit,
        project_id=project_id,
        runnable_only=runnable_only,
    )


def ref(executor_id: str = "exec-1", attempt: int | None = 1) -> AttemptRef:
    return AttemptRef(executor_id=executor_id, attempt=attempt)
