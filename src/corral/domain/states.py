"""Job states and the one table of allowed transitions.

Every store write names the state it expects; a write whose expectation does
not hold changes nothing and surfaces as ``InvalidTransition`` or
``StaleAttempt``, never as a silent overwrite.
"""

from __future__ import annotations

from enum import StrEnum

from corral.errors import InvalidTransition


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class AttemptStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    LOST = "lost"  # the lease ran out before the executor reported
    RELEASED = "released"  # handed back unstarted by a draining worker


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
)

# (from, to) -> why the move happens. Anything not listed is refused.
TRANSITIONS: dict[tuple[JobStatus, JobStatus], str] = {
    (JobStatus.PENDING, JobStatus.RUNNING): "claimed by an executor",
    (JobStatus.PENDING, JobStatus.CANCELLED): "cancelled before it ran",
    (JobStatus.RUNNING, JobStatus.COMPLETED): "the executor reported success",
    (JobStatus.RUNNING, JobStatus.FAILED): "the executor reported failure, or retries ran out",
    (JobStatus.RUNNING, JobStatus.CANCELLED): "cancelled while running",
    (JobStatus.RUNNING, JobStatus.PENDING): "lease lost or released; queued for a new attempt",
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return (current, target) in TRANSITIONS


def check_transition(job_id: str, current: JobStatus, target: JobStatus) -> None:
    """Raise ``InvalidTransition`` unless the table allows ``current -> target``."""
    if not can_transition(current, target):
        raise InvalidTransition(
            f"job is {current}, cannot become {target}",
            job_id=job_id,
            status=str(current),
        )


def check_pending(job_id: str, current: JobStatus) -> None:
    """For faces that refuse to touch a job once it has left the queue."""
    if current is not JobStatus.PENDING:
        raise InvalidTransition(
            f"job is {current}, not pending", job_id=job_id, status=str(current)
        )
