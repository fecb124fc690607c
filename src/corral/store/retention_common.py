"""The purge's SQL, for either store: the walks, the holds, and the deletes.

Each statement names its id list as ``{ids}``: ``IN (?, ?, ...)`` on SQLite,
``= ANY($1::text[])`` on PostgreSQL. The walks read ``{key}`` in the index's order
from a cursor, as a range (``key >= cursor AND (key > cursor OR seq > cursor)``)
so that the index bounds the scan on both sides on either engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corral.domain.retention import Finished, RetentionRule, Stream
from corral.store.retention_port import TERMINAL_SQL

# The key a walk orders by: the same expression as the index of migration 0023.
KEYS = {Stream.DEFAULT: "finished_at", Stream.OWN: "finished_at + retention_days * 86400"}
INDEXES = {Stream.DEFAULT: "jobs_finished", Stream.OWN: "jobs_expiring"}
_OWN = {Stream.DEFAULT: "retention_days IS NULL", Stream.OWN: "retention_days > 0"}


def walk_sql(stream: Stream, mark: Callable[[str], str], indexed_by: bool) -> str:
    """Up to ``limit`` jobs of the stream past ``cutoff``, after the cursor."""
    key = KEYS[stream]
    hint = f" INDEXED BY {INDEXES[stream]}" if indexed_by else ""
    after = f"{key} >= {mark('key')} AND ({key} > {mark('key')} OR seq > {mark('seq')})"
    return (
        f"SELECT seq, id, workflow_id, status, finished_at, retention_days, {key} AS key "
        f"FROM jobs{hint} WHERE status IN {TERMINAL_SQL} AND {_OWN[stream]} "
        f"AND {key} < {mark('cutoff')} AND {after} "
        f"ORDER BY {key}, seq LIMIT {mark('limit')}"
    )


def cutoff(rule: RetentionRule, stream: Stream) -> float:
    """The walk's bound: finish times on the server's age, expiries on a job's own."""
    return rule.default_cutoff if stream is Stream.DEFAULT else rule.now


MEMBERS_SQL = (
    "SELECT seq, id, workflow_id, status, finished_at, retention_days FROM jobs "
    "WHERE workflow_id {ids}"
)

# Ids among {ids} kept past their age: a dependant not finished yet (it may read the
# job's result), or being the newest job of a schedule that still exists.
HELD_SQL = f"""
SELECT j.id FROM jobs AS j WHERE j.id {{ids}} AND (
  (j.dependants > 0 AND EXISTS (
    SELECT 1 FROM job_deps AS d JOIN jobs AS c ON c.id = d.job_id
    WHERE d.depends_on = j.id AND c.status NOT IN {TERMINAL_SQL}))
  OR (j.schedule_id IS NOT NULL
    AND EXISTS (SELECT 1 FROM schedules AS s WHERE s.id = j.schedule_id)
    AND NOT EXISTS (SELECT 1 FROM jobs AS n
      WHERE n.schedule_id = j.schedule_id AND n.scheduled_for > j.scheduled_for)))
"""

# By seq (the primary key: on id SQLite would rather walk jobs_status), the status
# checked again as the rows go: a job the walk read may have moved since.
DELETE_JOBS_SQL = f"DELETE FROM jobs WHERE seq {{ids}} AND status IN {TERMINAL_SQL} RETURNING id"
# What hangs off a deleted job, by the ``Pruned`` field that counts it (None: not
# counted). Chunks go before their files, since they are found through them. A job's
# edges to the jobs it waited for go with it; edges from its dependants stay theirs.
DELETE_CHILDREN_SQL: tuple[tuple[str | None, str], ...] = (
    ("attempts", "DELETE FROM attempts WHERE job_id {ids}"),
    ("output_chunks", "DELETE FROM job_output WHERE job_id {ids}"),
    (
        "file_chunks",
        "DELETE FROM file_chunks WHERE file_id IN (SELECT id FROM files WHERE job_id {ids})",
    ),
    ("artifacts", "DELETE FROM files WHERE job_id {ids}"),
    ("idempotency_keys", "DELETE FROM idempotency_keys WHERE job_id {ids}"),
    (None, "DELETE FROM job_deps WHERE job_id {ids}"),
)
# A workflow goes once none of its jobs is left.
DELETE_WORKFLOWS_SQL = (
    "DELETE FROM workflows WHERE id {ids} "
    "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.workflow_id = workflows.id)"
)
# Executors silent for long, holding no running job (its lease would name them).
DELETE_EXECUTORS_SQL = (
    "DELETE FROM executors WHERE last_heartbeat < {mark} AND NOT EXISTS ("
    "SELECT 1 FROM jobs WHERE jobs.status = 'running' "
    "AND jobs.executor_id = executors.executor_id)"
)


def finished(row: Mapping[str, Any], with_key: bool = False) -> Finished:
    return Finished(
        id=row["id"],
        seq=row["seq"],
        workflow_id=row["workflow_id"],
        terminal=row["status"] in ("completed", "failed", "cancelled"),
        finished_at=row["finished_at"],
        retention_days=row["retention_days"],
        key=float(row["key"]) if with_key else 0.0,
    )
