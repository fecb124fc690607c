"""The SQLite claim: a plain function of the writer's connection.

It runs inside whatever write transaction calls it: a worker's own claim, or a
submit that hands its new jobs straight to a claim waiting for work
(``SqliteStore.insert_and_claim``), where the insert and the lease share one commit.
Either way the same statements choose the jobs, so every rule of the queue
(priority, fair-share turns, labels, projects, placement) holds alike.
"""

from __future__ import annotations

import sqlite3

import orjson

from corral.domain.jobs import ClaimRequest, Job
from corral.store.rows import JOB_COLUMNS, job_from_row
from corral.store.sqlite import placement

# INDEXED BY: without table statistics the planner prefers jobs_status and then
# sorts the whole queue; walking jobs_queue in order keeps a claim O(n claimed).
_CANDIDATES = """
SELECT seq FROM jobs INDEXED BY jobs_queue
WHERE status = 'pending' AND run_after <= :now
  AND (labels = '' OR NOT EXISTS (
        SELECT 1 FROM json_each(jobs.labels) AS l
        WHERE l.value NOT IN (SELECT value FROM json_each(:labels))))
  AND runnable >= :least_runnable
  AND (:project IS NULL OR project_id = :project)
ORDER BY priority DESC, turn, seq
LIMIT :limit
"""
_CLAIM = f"""
UPDATE jobs SET status = 'running', attempt = attempt + 1, executor_id = :executor,
  executor_ip = :ip, lease_principal_id = :principal,
  lease_expires_at = :now + lease_seconds, started_at = :now, cancel_requested = 0,
  stdout_size = 0, stdout_truncated = 0, stderr_size = 0, stderr_truncated = 0,
  exit_code = NULL, error_message = NULL
WHERE seq IN ({_CANDIDATES})
RETURNING {JOB_COLUMNS}
"""
_OPEN_ATTEMPT = (
    "INSERT INTO attempts (job_id, number, executor_id, executor_ip, principal_id, "
    "claimed_at, status) VALUES (?, ?, ?, ?, ?, ?, 'running')"
)
_UPSERT_SEEN_EXECUTOR = """
INSERT INTO executors (executor_id, principal_id, ip, registered_at, last_heartbeat, registered)
VALUES (?, ?, ?, ?, ?, 0)
ON CONFLICT (executor_id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat,
  ip = coalesce(excluded.ip, executors.ip)
"""


def claim(
    conn: sqlite3.Connection, request: ClaimRequest, now: float, seen: dict[str, float]
) -> list[Job]:
    """Lease up to ``request.limit`` jobs, best first, and open their attempts.

    ``seen``: when each executor was last recorded as seen (at most once a second,
    off the claim's hot path); updated here.
    """
    params = {
        "now": now,
        "labels": orjson.dumps(sorted(request.labels)).decode(),
        "least_runnable": request.least_runnable,
        "project": request.project_id,
        "limit": request.limit,
        "executor": request.executor_id,
        "ip": request.executor_ip,
        "principal": request.principal_id,
    }
    _note_executor(conn, request, now, seen)
    if placement.placed_waiting(conn):
        rows = placement.claim_placed(conn, params)
    else:
        rows = conn.execute(_CLAIM, params).fetchall()
    # RETURNING comes back in no promised order; hand out the best first.
    claimed = sorted((job_from_row(r) for r in rows), key=lambda j: (-j.priority, j.turn, j.seq))
    conn.executemany(
        _OPEN_ATTEMPT,
        [
            (j.id, j.attempt, request.executor_id, request.executor_ip, request.principal_id, now)
            for j in claimed
        ],
    )
    return claimed


def _note_executor(
    conn: sqlite3.Connection, request: ClaimRequest, now: float, seen: dict[str, float]
) -> None:
    if now - seen.get(request.executor_id, 0.0) < 1.0:
        return
    conn.execute(
        _UPSERT_SEEN_EXECUTOR,
        (request.executor_id, request.principal_id, request.executor_ip, now, now),
    )
    seen[request.executor_id] = now
