"""A worker's plain report on PostgreSQL in one statement, so one round trip.

The general path (``PostgresStore.finish_many``) locks the jobs named, decides each
report in Python and writes the batch: BEGIN, SELECT ... FOR UPDATE, the write, COMMIT,
four round trips for the commonest call a worker makes, one job's ``complete``.

A report whose outcome needs no Python to decide (completed or cancelled: no retry
policy to consult; no output to fit under the cap) is written here in one autocommitted
statement whose WHERE clause is the lease fence (``domain.leases.check_fence``) and the
transition check (only a running job ends), so it changes nothing unless the general
path would have accepted it and written the same rows: the job's end, its attempt's
end, the executor's completed count, all at the database's clock. When it changes
nothing (not found, not this attempt's lease, already finished) the caller takes the
general path, which says precisely why, or decides afresh if the job moved meanwhile.
"""

from __future__ import annotations

from typing import Any

from corral.domain import outcomes
from corral.domain.jobs import Job
from corral.store.leases_port import Report
from corral.store.rows import JOB_COLUMNS, job_from_row, result_to_json

# $1 job, $2 executor, $3 attempt (None: the current one), $4 principal holding the lease
# (None: anyone's, an admin acting), $5 job status, $6 attempt status, $7 exit code,
# $8 error message, $9 result (JSON text), $10 processes killed after the leader exited.
FINISH_ONE = f"""
WITH clock AS (SELECT extract(epoch from now())::float8 AS t), j AS (
  UPDATE jobs SET status = $5, finished_at = (SELECT t FROM clock), exit_code = $7,
    error_message = $8, result = $9, lease_expires_at = NULL
  WHERE id = $1 AND status = 'running' AND attempt > 0 AND executor_id = $2
    AND ($3::int4 IS NULL OR attempt = $3)
    AND ($4::text IS NULL OR lease_principal_id = $4)
  RETURNING {JOB_COLUMNS}
), a AS (
  UPDATE attempts SET status = $6, ended_at = (SELECT t FROM clock), exit_code = $7,
    error_message = $8, leftover_processes = coalesce($10::int4, attempts.leftover_processes)
  FROM j WHERE attempts.job_id = j.id AND attempts.number = j.attempt
), e AS (
  UPDATE executors SET jobs_completed = jobs_completed + 1, last_heartbeat = (SELECT t FROM clock)
  FROM j WHERE executors.executor_id = j.executor_id AND j.status = 'completed'
)
SELECT * FROM j
"""


async def finish_plain(conn: Any, report: Report) -> Job | None:
    """The job as this one statement left it, or None if it changed nothing."""
    outcome, ref = report.outcome, report.ref
    row = await conn.fetchrow(
        FINISH_ONE,
        report.job_id,
        ref.executor_id,
        ref.attempt,
        ref.principal_id,
        outcome.status.value,
        outcomes.attempt_status(outcome.status).value,
        outcome.exit_code,
        outcome.error_message,
        result_to_json(outcome.result),
        outcome.leftover_processes,
    )
    return None if row is None else job_from_row(row)
