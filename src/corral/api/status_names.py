"""The job status names CMD Executor, Octaskly and TaskDriver all use.

Their documents call a waiting job ``queued`` where the core says ``pending``;
the other states keep the core's names (``cancelled`` is in none of their lists,
but a job cancelled through any face must still show as such). Defined once so
the three faces cannot drift apart; a dialect that ever needs other names keeps
its own table instead.
"""

from __future__ import annotations

from corral.domain.states import JobStatus
from corral.errors import InvalidInput

STATUS_NAMES: dict[JobStatus, str] = {
    JobStatus.PENDING: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.COMPLETED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELLED: "cancelled",
}
STATUS_BY_NAME: dict[str, JobStatus] = {name: status for status, name in STATUS_NAMES.items()}


def parse_status(name: str | None, separator: str = ", ") -> JobStatus | None:
    """A status filter given by name; ``InvalidInput`` naming the allowed ones."""
    if name is None:
        return None
    try:
        return STATUS_BY_NAME[name]
    except KeyError:
        allowed = separator.join(STATUS_BY_NAME)
        raise InvalidInput(f"status must be one of {allowed}", field="status", value=name) from None
