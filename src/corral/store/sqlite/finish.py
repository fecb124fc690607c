"""A worker's plain report on SQLite: one UPDATE per table instead of read, decide, write.

The general path (``sqlite.ops.finish_batch``) reads the job, builds it, decides the
report in Python, builds the new job and writes it back. A report whose outcome needs
no Python to decide (completed or cancelled: no retry policy to consult; no output to
fit under the cap) is written here by statements whose WHERE clause is the lease
fence (``domain.leases.check_fence``) and the transition check (only a running job
ends), as ``postgres.finish`` does on PostgreSQL: they change nothing unless the
general path would have accepted the report and written the same rows. The job is
built once, from what the UPDATE returns.

When nothing changed (not found, not this attempt's lease, already finished) the
report takes the general path in the same transaction, which says precisely why. In a
batch, only reports on a job the batch names once take this path: reports on the same
job must be decided in their order, each seeing what the one before it did.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Sequence

from corral.domain import outcomes
from corral.domain.jobs import Job
from corral.domain.retry import RetryPolicy
from corral.domain.states import JobStatus
from corral.errors import CorralError
from corral.store.leases_port import Report
from corral.store.rows import JOB_COLUMNS, job_from_row, result_to_json
from corral.store.shared import is_plain
from corral.store.sqlite.ops import finish_batch

_END_JOB = f"""
UPDATE jobs SET status = :status, finished_at = :now, exit_code = :exit_code,
  error_message = :error, result = :result, lease_expires_at = NULL
WHERE id = :job AND status = 'running' AND attempt > 0 AND executor_id = :executor
  AND (:attempt IS NULL OR attempt = :attempt)
  AND (:principal IS NULL OR lease_principal_id = :principal)
RETURNING {JOB_COLUMNS}
"""
_END_ATTEMPT = """
UPDATE attempts SET status = :attempt_status, ended_at = :now, exit_code = :exit_code,
  error_message = :error, leftover_processes = coalesce(:leftover, leftover_processes)
WHERE job_id = :job AND number = :number
"""
_COUNT_COMPLETED = """
UPDATE executors SET jobs_completed = jobs_completed + 1, last_heartbeat = :now
WHERE executor_id = :executor
"""


def finish_plain(conn: sqlite3.Connection, report: Report, now: float) -> Job | None:
    """The job as these statements left it, or None if they changed nothing."""
    outcome, ref = report.outcome, report.ref
    params = {
        "job": report.job_id,
        "executor": ref.executor_id,
        "attempt": ref.attempt,
        "principal": ref.principal_id,
        "status": outcome.status.value,
        "attempt_status": outcomes.attempt_status(outcome.status).value,
        "exit_code": outcome.exit_code,
        "error": outcome.error_message,
        "result": result_to_json(outcome.result),
        "leftover": outcome.leftover_processes,
        "now": now,
    }
    row = conn.execute(_END_JOB, params).fetchone()
    if row is None:
        return None
    job = job_from_row(row)
    conn.execute(_END_ATTEMPT, {**params, "number": job.attempt})
    if job.status == JobStatus.COMPLETED:
        conn.execute(_COUNT_COMPLETED, params)
    return job


def finish_reports(
    conn: sqlite3.Connection,
    reports: Sequence[Report],
    now: float,
    policy: RetryPolicy,
    cap: int,
) -> list[Job | CorralError]:
    """Every report's answer: the plain ones on jobs named once by ``finish_plain``,
    the others (and plain ones it could not write) by ``finish_batch``, in order."""
    named = Counter(report.job_id for report in reports)
    answers: list[Job | CorralError | None] = [
        finish_plain(conn, report, now) if named[report.job_id] == 1 and is_plain(report) else None
        for report in reports
    ]
    rest = [i for i, answer in enumerate(answers) if answer is None]
    if rest:
        decided = finish_batch(conn, [reports[i] for i in rest], now, policy, cap)
        for i, answer in zip(rest, decided, strict=True):
            answers[i] = answer
    return [answer for answer in answers if answer is not None]
