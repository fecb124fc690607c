"""What both adapters decide for a lease that ends without a report (expired or
released), and for one report, without letting one row fail the rest of its batch.

A reaper pass takes the oldest expiries first, in one transaction; a batch of
results is applied in one transaction too. Were one row's decision to raise
(a corrupt row, a policy that cannot compute), the whole pass or batch would
fail, and the reaper would meet the same row first at every pass: no lease
anywhere would be reaped again. So each row's decision is isolated here: a
failure is logged and replaced by a verdict that cannot fail.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from corral.domain import outcomes
from corral.domain.jobs import Job
from corral.domain.leases import on_lease_lost, on_release, unrequeueable
from corral.domain.retry import RetryPolicy
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import CorralError, Unavailable

log = logging.getLogger("corral.store")

# Why an attempt ended without a report, as its error message says.
EXPIRED = "lease expired"
TAKEN_OVER = "executor id registered again; this lease was handed back"


def decide_lost(job: Job, now: float, policy: RetryPolicy) -> tuple[Job, AttemptStatus]:
    """The job after its lease ran out, and how its attempt ended."""
    try:
        new = outcomes.apply_verdict(job, on_lease_lost(job, now, policy), now)
    except Exception as exc:
        log.exception(
            "cannot requeue a lost lease; failing the job",
            extra={"action": "reap_row_failed", "job_id": job.id},
        )
        new = outcomes.apply_verdict(job, unrequeueable(exc), now)
    ended = AttemptStatus.CANCELLED if new.status == JobStatus.CANCELLED else AttemptStatus.LOST
    return new, ended


def released(job: Job, now: float) -> Job:
    """The job after its holder handed it back unstarted (see ``on_release``)."""
    new = outcomes.apply_verdict(job, on_release(job), now)
    return dataclasses.replace(new, releases=job.releases + 1, run_after=0.0)


def release_attempt_end(new: Job) -> tuple[AttemptStatus, str]:
    """How a released attempt is recorded: released, or cancelled before it started."""
    if new.status == JobStatus.CANCELLED:
        return AttemptStatus.CANCELLED, "cancelled before it started"
    return AttemptStatus.RELEASED, "released unstarted"


def unreadable_row(row: Mapping[str, Any], exc: BaseException) -> str:
    """Log a running row that cannot even be read; the error message to fail it with."""
    log.error(
        "cannot read a job whose lease expired; failing it",
        exc_info=exc,
        extra={"action": "reap_row_unreadable", "job_id": row["id"]},
    )
    return f"lease expired; the job could not be read ({type(exc).__name__})"


def report_failed(job_id: str, exc: BaseException) -> CorralError:
    """A report whose decision raised: logged, answered alone, the batch goes on."""
    if isinstance(exc, CorralError):
        return exc
    log.error(
        "cannot apply a report",
        exc_info=exc,
        extra={"action": "report_failed", "job_id": job_id},
    )
    return Unavailable("this report could not be recorded; send it again", job_id=job_id)
