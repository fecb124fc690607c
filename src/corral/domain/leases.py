"""Leases as pure decisions of ``now``: what a lost, failed or released attempt leaves
its job in, who may act on a lease (fencing), and when an expired lease may be reaped
after a restart or a clock jump (``ClockWatch``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from corral.domain.jobs import AttemptRef, Job
from corral.domain.retry import RetryPolicy, retries_left
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import Forbidden, InvalidTransition, StaleAttempt


@dataclass(frozen=True, slots=True)
class LeaseVerdict:
    """The state a lost attempt leaves its job in, and when it may run again."""

    status: JobStatus
    run_after: float = 0.0
    error_message: str | None = None


def attempts_spent(job: Job) -> int:
    """Attempts that count against ``max_retries``: releases of unstarted jobs do not."""
    return job.attempt - job.releases


def on_lease_lost(job: Job, now: float, policy: RetryPolicy) -> LeaseVerdict:
    """Requeue with backoff while retries remain; honour a pending cancel first."""
    if job.cancel_requested:
        return LeaseVerdict(JobStatus.CANCELLED, error_message="cancelled; executor went silent")
    if retries_left(attempts_spent(job), job.max_retries):
        return LeaseVerdict(JobStatus.PENDING, run_after=now + policy.delay(attempts_spent(job)))
    return LeaseVerdict(
        JobStatus.FAILED,
        error_message=f"lease expired on attempt {job.attempt}; no retries left",
    )


def on_reported_failure(job: Job, now: float, policy: RetryPolicy, retry: bool) -> LeaseVerdict:
    """A reported failure retries only when ``retry`` (see ``retry.wants_retry``) and
    retries remain."""
    if retry and not job.cancel_requested and retries_left(attempts_spent(job), job.max_retries):
        return LeaseVerdict(JobStatus.PENDING, run_after=now + policy.delay(attempts_spent(job)))
    return LeaseVerdict(JobStatus.FAILED)


def on_release(job: Job) -> LeaseVerdict:
    """A job handed back unstarted returns to the queue, spending no attempt; unless a
    cancel was requested meanwhile, which ends it cancelled (the next claim would
    otherwise clear the request and run a cancelled job)."""
    if job.cancel_requested:
        return LeaseVerdict(JobStatus.CANCELLED, error_message="cancelled before it started")
    return LeaseVerdict(JobStatus.PENDING)


def unrequeueable(error: BaseException) -> LeaseVerdict:
    """The verdict for a lost lease whose normal decision failed: fail the job, saying why.

    A reaper pass takes the oldest expiries first, so a row that fails every
    pass would otherwise stay at the head of the queue and block all others.
    """
    return LeaseVerdict(
        JobStatus.FAILED,
        error_message=f"lease expired; the job could not be requeued ({type(error).__name__})",
    )


# A wall clock that gains more than this on the monotonic clock between two readings
# has jumped forward (NTP steps, a resumed VM), rather than drifted.
JUMP_TOLERANCE = 1.0


@dataclass(frozen=True, slots=True)
class ClockWatch:
    """The reaper's two clocks, read together at each pass.

    Lease expiries are wall-clock times, so a forward jump of the wall clock makes
    every lease look expired at once, as a restart does (nobody could renew while
    the dispatcher was down). Either way executors deserve time to renew before
    anything is reaped: ``since`` is the monotonic time from which they have had
    it, the start or the last forward jump, whichever came later.
    """

    wall: float
    mono: float
    since: float

    @classmethod
    def start(cls, wall: float, mono: float) -> ClockWatch:
        return cls(wall, mono, mono)

    def observe(self, wall: float, mono: float, settled: float | None = None) -> ClockWatch:
        """The watch after a new reading; a forward jump restarts the renewal window.

        A wall reading that takes time (a database round trip) happened somewhere
        between ``mono`` and ``settled``; only a gain beyond the longest interval it
        may have taken is a jump, so a slow query never passes for one.
        """
        settled = mono if settled is None else settled
        return ClockWatch(wall, mono, settled if self.jumped_to(wall, settled) else self.since)

    def jumped_to(self, wall: float, mono: float) -> bool:
        return (wall - self.wall) - (mono - self.mono) > JUMP_TOLERANCE

    def spare_longer_than(self, grace: float) -> float | None:
        """Leases longer than this many seconds are still in their grace; None: none is.

        Each lease is spared for its own period, at most ``grace``, from ``since``:
        a job with a 3 s lease is reaped 3 s after a restart, not a minute.
        """
        window = self.mono - self.since
        return None if window >= grace else window


def spared(lease_seconds: float, spare_longer_than: float | None) -> bool:
    """Whether an expired lease is still within its grace (the stores' SQL says the same)."""
    return spare_longer_than is not None and lease_seconds > spare_longer_than


def check_fence(job: Job, ref: AttemptRef) -> None:
    """Refuse a call from anyone but the current holder of the job's lease.

    A caller whose attempt is no longer current (requeued, re-claimed, reaped)
    gets ``StaleAttempt``; the current holder acting on a finished job gets
    ``InvalidTransition``; a worker acting on another worker's lease gets
    ``Forbidden``.
    """
    if job.attempt == 0:  # never claimed: nobody ever held a lease on it
        raise InvalidTransition("job is not running", job_id=job.id, status=str(job.status))
    own_attempt = ref.attempt is None or ref.attempt == job.attempt
    own_executor = ref.executor_id == job.executor_id
    if not (own_attempt and own_executor) or job.status == JobStatus.PENDING:
        raise StaleAttempt(
            "this attempt no longer holds the job's lease",
            job_id=job.id,
            attempt=job.attempt,
            status=str(job.status),
        )
    if job.status != JobStatus.RUNNING:
        raise InvalidTransition(
            f"job is already {job.status}", job_id=job.id, status=str(job.status)
        )
    if ref.principal_id is not None and ref.principal_id != job.lease_principal_id:
        raise Forbidden("this job is leased by another worker", job_id=job.id)


LATE_RELEASE = "released unstarted after its lease ran out"


def check_late_release(job: Job, ref: AttemptRef, attempt_status: AttemptStatus | None) -> None:
    """May ``ref`` still hand back an attempt the reaper took while its worker was away?

    A worker cut off from the dispatcher past a lease cannot release in time, and
    the reaper charges the attempt (or fails a job out of retries). When the worker
    comes back and says it never started the attempt, the charge is returned, but
    only while that attempt is still the job's last (nobody claimed it since), was
    reaped (``lost``), and left the job pending or failed (a cancel stands).
    """
    own = ref.executor_id == job.executor_id and ref.attempt == job.attempt
    owner = ref.principal_id is None or ref.principal_id == job.lease_principal_id
    if not (
        own
        and owner
        and attempt_status == AttemptStatus.LOST
        and job.status in (JobStatus.PENDING, JobStatus.FAILED)
    ):
        raise StaleAttempt(
            "this attempt no longer holds the job's lease",
            job_id=job.id,
            attempt=job.attempt,
            status=str(job.status),
        )


def returned_unstarted(job: Job) -> Job:
    """The job once a reaped, never-started attempt is handed back: queued at once, and
    the attempt counted as a release (no retry spent)."""
    return dataclasses.replace(
        job,
        status=JobStatus.PENDING,
        releases=job.releases + 1,
        run_after=0.0,
        lease_expires_at=None,
        finished_at=None,
        error_message=None,
    )
