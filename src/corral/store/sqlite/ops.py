"""SQLite operations: plain functions of a connection, run inside the writer's transaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from corral.domain import outcomes
from corral.domain.jobs import AttemptRef, Job
from corral.domain.leases import (
    LATE_RELEASE,
    check_fence,
    check_late_release,
    returned_unstarted,
)
from corral.domain.retry import RetryPolicy
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import AlreadyExists, CorralError, InvalidInput, NotFound
from corral.store import lost
from corral.store.base import IdempotencyRecord, JobFilter
from corral.store.leases_port import OutputSlice, Report
from corral.store.migration_files import load_migrations
from corral.store.rows import JOB_COLUMNS, equals, job_from_row
from corral.store.sqlite.engine import connect

SELECT_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?"


def job_or_404(conn: sqlite3.Connection, job_id: str) -> Job:
    row = conn.execute(SELECT_JOB, (job_id,)).fetchone()
    if row is None:
        raise NotFound("job not found", job_id=job_id)
    return job_from_row(row)


def fenced_job(conn: sqlite3.Connection, job_id: str, ref: AttemptRef) -> Job:
    job = job_or_404(conn, job_id)
    check_fence(job, ref)
    return job


def return_unstarted(conn: sqlite3.Connection, job_id: str, ref: AttemptRef) -> Job:
    """A late release (``check_late_release``): requeue the job and count the reaped
    attempt as released."""
    job = job_or_404(conn, job_id)
    row = conn.execute(
        "SELECT status FROM attempts WHERE job_id = ? AND number = ?", (job.id, job.attempt)
    ).fetchone()
    check_late_release(job, ref, None if row is None else AttemptStatus(row[0]))
    conn.execute(
        "UPDATE jobs SET status = 'pending', releases = releases + 1, run_after = 0, "
        "lease_expires_at = NULL, finished_at = NULL, error_message = NULL WHERE seq = ?",
        (job.seq,),
    )
    conn.execute(
        "UPDATE attempts SET status = 'released', error_message = ? "
        "WHERE job_id = ? AND number = ?",
        (LATE_RELEASE, job.id, job.attempt),
    )
    return returned_unstarted(job)


def check_stream(stream: str) -> None:
    if stream not in ("stdout", "stderr"):
        raise InvalidInput("stream must be stdout or stderr", field="stream")


def append(
    conn: sqlite3.Connection,
    job: Job,
    stream: str,
    data: bytes,
    cap: int,
    *,
    truncated: bool = False,
) -> OutputSlice:
    """Store what fits of ``data``; ``truncated``: the sender lost output, say so.

    An attempt's first output deletes what earlier attempts printed: only the
    current attempt's is read, and keeping every retry's would multiply the cap
    by the number of attempts.
    """
    check_stream(stream)
    state = job.stdout if stream == "stdout" else job.stderr
    kept, cut = outcomes.fit(state.size, data, cap)
    if kept and state.size == 0 and job.attempt > 1:
        conn.execute(
            "DELETE FROM job_output WHERE job_id = ? AND attempt < ?", (job.id, job.attempt)
        )
    if kept:
        conn.execute(
            'INSERT INTO job_output (job_id, attempt, stream, "offset", data) '
            "VALUES (?, ?, ?, ?, ?)",
            (job.id, job.attempt, stream, state.size, kept),
        )
    size = state.size + len(kept)
    flag = cut or state.truncated or truncated
    conn.execute(
        f"UPDATE jobs SET {stream}_size = ?, {stream}_truncated = ? WHERE seq = ?",
        (size, int(flag), job.seq),
    )
    return OutputSlice(b"", state.size, size, flag, job.attempt)


def finish_batch(
    conn: sqlite3.Connection,
    reports: Sequence[Report],
    now: float,
    policy: RetryPolicy,
    cap: int,
) -> list[Job | CorralError]:
    """Decide every report first, then write them all with a few batched statements.

    A report is checked (fence, transition) before anything of it is written,
    so a refused report leaves no trace; a later report on the same job sees
    the earlier one's outcome, as if they had arrived one by one.
    """
    ids = list({r.job_id for r in reports})
    current = {j.id: j for j in jobs_by_id(conn, ids)}
    answers: list[Job | CorralError] = []
    job_rows: list[tuple[Any, ...]] = []
    attempt_rows: list[tuple[Any, ...]] = []
    completed: dict[str, int] = {}
    for report in reports:
        try:
            job = current.get(report.job_id)
            if job is None:
                raise NotFound("job not found", job_id=report.job_id)
            check_fence(job, report.ref)
            outcome = report.outcome
            new = outcomes.finished(job, outcome, now, policy)
        except Exception as exc:  # one report's failure must not fail its batch
            answers.append(lost.report_failed(report.job_id, exc))
            continue
        for stream, text in (("stdout", outcome.stdout), ("stderr", outcome.stderr)):
            if text:
                appended = append(conn, job, stream, text.encode(), cap)
                new = outcomes.with_stream(new, stream, appended.size, appended.truncated)
        current[job.id] = new
        job_rows.append(finish_params(new, outcome.result))
        status = outcomes.attempt_status(outcome.status).value
        attempt_rows.append(
            (status, now, outcome.exit_code, outcome.error_message, job.id, job.attempt)
        )
        if new.status == JobStatus.COMPLETED and job.executor_id is not None:
            completed[job.executor_id] = completed.get(job.executor_id, 0) + 1
        answers.append(new)
    conn.executemany(_FINISH_JOB, job_rows)
    conn.executemany(_END_ATTEMPT, attempt_rows)
    conn.executemany(
        "UPDATE executors SET jobs_completed = jobs_completed + ?, last_heartbeat = ? "
        "WHERE executor_id = ?",
        [(count, now, executor) for executor, count in completed.items()],
    )
    return answers


def reap_row(
    conn: sqlite3.Connection,
    row: Any,
    now: float,
    policy: RetryPolicy,
    why: str = lost.EXPIRED,
) -> Job | None:
    """Requeue, fail or cancel one expired lease; a row that cannot be read is failed
    by its sequence number alone, so it never comes back to block the reaper."""
    try:
        job = job_from_row(row)
    except Exception as exc:
        conn.execute(_FAIL_UNREADABLE, (now, lost.unreadable_row(row, exc), row["seq"]))
        conn.execute(_END_ATTEMPT, ("lost", now, None, why, row["id"], row["attempt"]))
        return None
    new, ended = lost.decide_lost(job, now, policy)
    write_finish(conn, new, None)
    end_attempt(conn, job, ended, now, None, why)
    return new


_FAIL_UNREADABLE = (
    "UPDATE jobs SET status = 'failed', finished_at = ?, error_message = ?, "
    "lease_expires_at = NULL WHERE seq = ? AND status = 'running'"
)


def jobs_by_id(conn: sqlite3.Connection, ids: Sequence[str]) -> list[Job]:
    if not ids:
        return []
    marks = ",".join("?" for _ in ids)
    rows = conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({marks})", tuple(ids))
    return [job_from_row(r) for r in rows]


_FINISH_JOB = (
    "UPDATE jobs SET status = ?, finished_at = ?, exit_code = ?, error_message = ?, "
    "result = ?, run_after = ?, lease_expires_at = NULL WHERE seq = ?"
)
_END_ATTEMPT = (
    "UPDATE attempts SET status = ?, ended_at = ?, exit_code = ?, error_message = ? "
    "WHERE job_id = ? AND number = ?"
)


def finish_params(job: Job, result: Any) -> tuple[Any, ...]:
    encoded = None if result is None else orjson.dumps(result).decode()
    return (
        job.status.value,
        job.finished_at,
        job.exit_code,
        job.error_message,
        encoded,
        job.run_after,
        job.seq,
    )


def write_finish(conn: sqlite3.Connection, job: Job, result: Any) -> None:
    conn.execute(_FINISH_JOB, finish_params(job, result))


def end_attempt(
    conn: sqlite3.Connection,
    job: Job,
    status: AttemptStatus,
    now: float,
    exit_code: int | None,
    error: str | None,
) -> None:
    conn.execute(_END_ATTEMPT, (status.value, now, exit_code, error, job.id, job.attempt))


def insert_idempotency(
    conn: sqlite3.Connection, record: IdempotencyRecord, job_id: str | None
) -> None:
    """``job_id``: the (first) job the request made; pruning that job frees the key."""
    try:
        conn.execute(
            "INSERT INTO idempotency_keys (principal_id, key, request_hash, status_code, body, "
            "created_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.principal_id,
                record.key,
                record.request_hash,
                record.status_code,
                record.body,
                time.time(),
                job_id,
            ),
        )
    except sqlite3.IntegrityError:
        raise AlreadyExists("idempotency key already used", key=record.key) from None


def filter_sql(flt: JobFilter) -> tuple[str, tuple[Any, ...]]:
    """A WHERE clause with ? placeholders for the filter's set fields, and their values."""
    fields = flt.set_fields()
    where = " AND ".join(equals(column, value, "?") for column, value in fields)
    return (f"WHERE {where}" if where else ""), tuple(value for _, value in fields)


def migrate(path: Path) -> None:
    """Apply the numbered scripts in ``migrations/sqlite`` that this file has not seen."""
    conn = connect(path)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for version, sql in load_migrations("sqlite"):
            if version not in done:
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO schema_migrations VALUES "
                    f"({version}, {time.time()});\nCOMMIT;"
                )
    finally:
        conn.close()
