"""The lease half of the storage port (``Store`` extends it): claims, renewals,
reports, releases, cancels, the reaper, and the output an attempt appends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from corral.domain.jobs import AttemptRef, ClaimRequest, Job, Outcome
from corral.domain.outcomes import Piece
from corral.domain.retry import RetryPolicy
from corral.errors import CorralError


@dataclass(frozen=True, slots=True)
class OutputSlice:
    """Bytes of one stream from ``offset``, and where the stream stands now."""

    data: bytes
    offset: int
    size: int
    truncated: bool
    attempt: int


@dataclass(frozen=True, slots=True)
class Report:
    """One executor report in a batch of finishes."""

    job_id: str
    ref: AttemptRef
    outcome: Outcome


class LeaseStore(Protocol):
    """What the lease service and the reaper need of a store."""

    # --- the lease lifecycle ---------------------------------------------
    # ``now: float | None``: the time the operation happens at. None reads the store's
    # clock (``clock``), which the dispatcher passes, so that lease times never come
    # from one replica's wall clock; tests pass a time to move the clock by hand.
    async def clock(self) -> float:
        """The store's clock, in epoch seconds, that lease times are measured by: the
        database's ``now()`` on PostgreSQL, shared by every replica; on SQLite, whose
        file one process owns, that process's wall clock."""

    async def claim(self, request: ClaimRequest, now: float | None) -> list[Job]:
        """Lease up to ``request.limit`` runnable jobs: highest priority, then oldest."""

    async def renew_lease(
        self, job_id: str, ref: AttemptRef, now: float | None, duration: float | None = None
    ) -> Job:
        """Push the lease to ``now + duration`` (the job's ``lease_seconds`` when None)."""

    async def renew_executor_leases(
        self,
        executor_id: str,
        held: Sequence[tuple[str, int]],
        now: float | None,
        principal_id: str | None = None,
    ) -> list[Job]:
        """Renew every listed (job, attempt) the executor still holds, and with
        ``principal_id`` only those leased by that principal; return those jobs."""

    async def expire_executor_leases(
        self, executor_id: str, keep_principal_id: str, now: float | None, policy: RetryPolicy
    ) -> list[Job]:
        """End at once, as lost, every lease the executor id holds under another principal
        than ``keep_principal_id``: an earlier registration of the id is gone, so nobody
        will renew or report them. Returns the jobs as left (requeued, failed, cancelled)."""

    async def finish(
        self,
        job_id: str,
        ref: AttemptRef,
        outcome: Outcome,
        now: float | None,
        policy: RetryPolicy,
    ) -> Job: ...

    async def finish_many(
        self, reports: Sequence[Report], now: float | None, policy: RetryPolicy
    ) -> list[Job | CorralError]:
        """Apply a batch of reports in one transaction; each succeeds or fails alone."""

    async def release(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        """Hand an unstarted job back to the queue without spending a retry."""

    async def return_unstarted(self, job_id: str, ref: AttemptRef, now: float | None) -> Job:
        """A release that comes after the reaper took the attempt (its worker was cut off):
        requeue the job and return the retry the reap spent, if ``check_late_release``
        allows; otherwise ``StaleAttempt``."""

    async def cancel(self, job_id: str, now: float, pending_only: bool = False) -> Job:
        """Cancel a pending job at once; mark a running one for cancellation, unless
        ``pending_only``, which refuses anything but a pending job (``InvalidTransition``)
        in the same transaction, so a claim cannot slip in between."""

    async def reap_expired(
        self,
        now: float | None,
        policy: RetryPolicy,
        limit: int,
        spare_longer_than: float | None = None,
    ) -> list[Job]:
        """Requeue or fail running jobs whose lease ran out before ``now``, except those
        whose ``lease_seconds`` exceed ``spare_longer_than`` (still in their grace after
        a restart or a clock jump; see ``domain.leases.ClockWatch``)."""

    async def next_run_after(self, now: float) -> float | None:
        """The earliest time a backed-off pending job becomes claimable, if any."""

    # --- output -----------------------------------------------------------
    async def append_output(
        self,
        job_id: str,
        ref: AttemptRef,
        stream: str,
        data: bytes,
        *,
        at: int | None = None,
        truncated: bool = False,
    ) -> OutputSlice:
        """Append to the current attempt's stream, keeping at most the store's cap.

        ``at``: the offset the sender meant ``data`` for; bytes already stored there
        (a resent chunk) are skipped. ``truncated``: the sender lost output, so the
        stream is flagged truncated whatever its size."""

    async def read_output(
        self, job_id: str, stream: str, offset: int, limit: int
    ) -> OutputSlice: ...

    async def read_pieces(self, job_id: str) -> tuple[Job, list[Piece]]:
        """The job and every stored chunk of its current attempt's output, both streams,
        with arrival times (``outcomes.interleave`` orders them). Bounded by the
        output cap of each stream."""
        ...
