"""The SQLite claim of jobs that ask for resources or for no network (issue 12).

Most queues hold no such job, so a claim first asks the (normally empty)
``jobs_placed`` index whether any waits; only then does it read the claimer's
capacity and take this slower path. The single writer serialises claims, so the
free capacity read here cannot change before the claim's own UPDATE commits.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from corral.store.rows import JOB_COLUMNS

ANY_PLACED = "SELECT 1 FROM jobs INDEXED BY jobs_placed WHERE status = 'pending' AND placed = 1"

# Capacity left on one executor: what it offers minus what its running jobs reserve.
# An executor that never said (no row, or NULL columns) offers nothing to reserve.
FREE_CAPACITY = """
SELECT coalesce(e.cpus, e.cpu_count, 0) - coalesce(r.cpus, 0) AS free_cpus,
       coalesce(e.memory_mb, 0) - coalesce(r.memory_mb, 0) AS free_memory_mb,
       e.network_control AS network_control
FROM executors AS e, (
  SELECT sum(req_cpus) AS cpus, sum(req_memory_mb) AS memory_mb FROM jobs
  WHERE status = 'running' AND executor_id = :executor
) AS r
WHERE e.executor_id = :executor
"""

# The best candidates that each fit what is free; then, in queue order, only those
# whose running total still fits (a job without resources always does). A small
# float slack keeps 0.1 + 0.2 CPUs inside a 0.3 quota.
CLAIM_PLACED = f"""
WITH candidates AS (
  SELECT seq, priority, turn, req_cpus, req_memory_mb FROM jobs INDEXED BY jobs_queue
  WHERE status = 'pending' AND run_after <= :now
    AND (labels = '' OR NOT EXISTS (
          SELECT 1 FROM json_each(jobs.labels) AS l
          WHERE l.value NOT IN (SELECT value FROM json_each(:labels))))
    AND runnable >= :least_runnable
    AND (:project IS NULL OR project_id = :project)
    AND (placed = 0 OR (
      (req_cpus IS NULL OR req_cpus <= :free_cpus + 1e-9)
      AND (req_memory_mb IS NULL OR req_memory_mb <= :free_memory_mb)
      AND (no_network = 0 OR :network_control)))
  ORDER BY priority DESC, turn, seq
  LIMIT :limit
), totals AS (
  SELECT seq, req_cpus, req_memory_mb,
    sum(coalesce(req_cpus, 0)) OVER w AS used_cpus,
    sum(coalesce(req_memory_mb, 0)) OVER w AS used_memory_mb
  FROM candidates WINDOW w AS (ORDER BY priority DESC, turn, seq ROWS UNBOUNDED PRECEDING)
)
UPDATE jobs SET status = 'running', attempt = attempt + 1, executor_id = :executor,
  executor_ip = :ip, lease_principal_id = :principal,
  lease_expires_at = :now + lease_seconds, started_at = :now, cancel_requested = 0,
  stdout_size = 0, stdout_truncated = 0, stderr_size = 0, stderr_truncated = 0,
  exit_code = NULL, error_message = NULL
WHERE seq IN (
  SELECT seq FROM totals
  WHERE (req_cpus IS NULL OR used_cpus <= :free_cpus + 1e-9)
    AND (req_memory_mb IS NULL OR used_memory_mb <= :free_memory_mb))
RETURNING {JOB_COLUMNS}
"""


def placed_waiting(conn: sqlite3.Connection) -> bool:
    """Whether any pending job asks for resources or no network: one probe of an
    index that is empty in most queues."""
    return conn.execute(ANY_PLACED).fetchone() is not None


def claim_placed(conn: sqlite3.Connection, params: dict[str, Any]) -> list[Any]:
    """Claim within the executor's free capacity, inside the caller's write transaction."""
    row = conn.execute(FREE_CAPACITY, {"executor": params["executor"]}).fetchone()
    free = {
        "free_cpus": float(row[0]) if row else 0.0,
        "free_memory_mb": int(row[1]) if row else 0,
        "network_control": int(bool(row[2])) if row else 0,
    }
    return conn.execute(CLAIM_PLACED, {**params, **free}).fetchall()
