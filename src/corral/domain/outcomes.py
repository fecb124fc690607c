"""How a report or a lost lease changes a job: pure functions returning the new job."""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from corral.domain.jobs import Job, Outcome, StreamState
from corral.domain.leases import LeaseVerdict, on_reported_failure
from corral.domain.retry import RetryPolicy, wants_retry
from corral.domain.states import AttemptStatus, JobStatus, check_transition
from corral.errors import InvalidInput

_ATTEMPT_STATUS = {
    JobStatus.COMPLETED: AttemptStatus.COMPLETED,
    JobStatus.FAILED: AttemptStatus.FAILED,
    JobStatus.CANCELLED: AttemptStatus.CANCELLED,
}


def attempt_status(reported: JobStatus) -> AttemptStatus:
    return _ATTEMPT_STATUS[reported]


def finished(job: Job, outcome: Outcome, now: float, policy: RetryPolicy) -> Job:
    """The job after its current attempt reported ``outcome``."""
    if outcome.status not in _ATTEMPT_STATUS:
        raise InvalidInput("an outcome must be completed, failed or cancelled", field="status")
    if outcome.status == JobStatus.FAILED:
        retry = wants_retry(outcome.retry, job.spec.retry_on_failure, outcome.exit_code)
        verdict = on_reported_failure(job, now, policy, retry)
        verdict = dataclasses.replace(verdict, error_message=outcome.error_message)
    else:
        verdict = LeaseVerdict(outcome.status, error_message=outcome.error_message)
    new = apply_verdict(job, verdict, now)
    return dataclasses.replace(new, exit_code=outcome.exit_code, result=outcome.result)


def describe_outcome(
    status: JobStatus, exit_code: int | None, error_message: str | None
) -> str | None:
    """How an ended job ended, in words: "timed out after 2 s (exit 143)" rather than
    a bare 143. None while the job has not ended."""
    if status not in _ATTEMPT_STATUS:
        return None
    words = error_message or ("exited with code 0" if exit_code == 0 else str(status))
    if exit_code is not None and f"code {exit_code}" not in words:
        words = f"{words} (exit {exit_code})"
    return words


def apply_verdict(job: Job, verdict: LeaseVerdict, now: float) -> Job:
    check_transition(job.id, job.status, verdict.status)
    terminal = verdict.status != JobStatus.PENDING
    return dataclasses.replace(
        job,
        status=verdict.status,
        run_after=verdict.run_after if not terminal else job.run_after,
        finished_at=now if terminal else None,
        error_message=verdict.error_message,
        lease_expires_at=None,
    )


def cancelled_waiting(job: Job, now: float) -> Job:
    """A job cancelled before it ran: no longer waiting for dependencies or a key."""
    return dataclasses.replace(
        job, status=JobStatus.CANCELLED, finished_at=now, blocked=False, held=False
    )


def unseen(size: int, data: bytes, at: int | None) -> bytes:
    """The part of ``data``, sent to be stored at offset ``at``, not stored yet.

    A worker that lost the answer to an output call sends the chunk again with the
    same offset; the bytes already stored from it are not stored twice.
    """
    if at is None or at >= size:
        return data
    return data[size - at :]


def fit(size: int, data: bytes, cap: int) -> tuple[bytes, bool]:
    """The part of ``data`` that still fits under ``cap``, and whether some was cut."""
    room = max(0, cap - size)
    if len(data) <= room:
        return data, False
    return data[:room], True


def with_stream(job: Job, stream: str, size: int, truncated: bool) -> Job:
    state = StreamState(size, truncated)
    if stream == "stdout":
        return dataclasses.replace(job, stdout=state)
    return dataclasses.replace(job, stderr=state)


@dataclass(frozen=True, slots=True)
class Piece:
    """One stored chunk of a stream, with when the dispatcher stored it."""

    stream: str
    offset: int
    data: bytes
    arrived_at: float


def interleave(pieces: Sequence[Piece]) -> list[Piece]:
    """Both streams' pieces in the order they arrived, as a terminal would have shown them.

    Each stream stays in its own offset order whatever the clocks say (replicas'
    clocks may disagree by a little); ties go to stdout. Pieces stored before the
    store kept arrival times (``arrived_at`` 0) come first, stdout then stderr.
    """
    streams = [
        sorted((p for p in pieces if p.stream == name), key=lambda p: p.offset)
        for name in ("stdout", "stderr")
    ]
    return list(heapq.merge(*streams, key=lambda p: p.arrived_at))
