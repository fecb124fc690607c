"""SQL text of the PostgreSQL adapter, and the small helpers that build and run it.

Kept apart so ``postgres.py`` reads as the logic of each operation.

Batches travel as parallel arrays expanded with ``unnest``: one statement and
one round trip per batch, whatever its size. Statements that lock rows take
job locks before executor locks, always, so two transactions never wait on
each other in a cycle (see ``PostgresStore`` for the ordering argument).
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import asyncpg

from corral.domain import outcomes
from corral.domain.jobs import AttemptRef, Job
from corral.domain.leases import check_fence
from corral.domain.retry import RetryPolicy
from corral.domain.states import AttemptStatus
from corral.errors import AlreadyExists, InvalidInput, NotFound
from corral.store import lost
from corral.store.base import IdempotencyRecord, JobFilter
from corral.store.rows import (
    JOB_COLUMNS,
    JOB_INSERT_COLUMNS,
    equals,
    job_from_row,
    result_to_json,
)

# What "the database cannot be reached" looks like from asyncpg.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.InterfaceError,
    # A server-side kill landing as a query starts desynchronises the protocol.
    asyncpg.exceptions.InternalClientError,
)

CHANNEL = "corral_events"
# pg_advisory_lock key serialising migrations across replicas that start together.
MIGRATION_LOCK = 0x636F7272616C  # "corral"
# The ``timeout`` of statements that take what they take (a migration, the wait for
# another replica's, VACUUM), beyond the pool's command timeout. asyncpg has no
# "none" for one call; a day stands for it.
UNHURRIED = 86400.0

# Column types of JOB_INSERT_COLUMNS, in order; labels arrive as JSON text or ''.
_INSERT_TYPES = (
    "text",
    "text",
    "text",
    "int4",
    "int4",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "int4",
    "float8",
    "float8",
    "text",
    "float8",
    "int4",
    "int4",
    "int4",
    "text",
    "text",
    "text",  # schedule_id
    "float8",  # scheduled_for
    "int4",  # retention_days
    "text",  # concurrency_key
    "int4",  # concurrency_limit
    "text",  # share_id
)
_INSERT_ARGS = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_INSERT_TYPES))
_INSERT_NAMES = ", ".join(f"c_{c}" for c in JOB_INSERT_COLUMNS)
_INSERT_VALUES = ", ".join(
    "nullif(c_labels, '')::jsonb" if c == "labels" else f"c_{c}" for c in JOB_INSERT_COLUMNS
)
# The jobs as parallel arrays, each given its fair-share turn (domain/fairness.py): per
# (share, priority) of the batch, the first turn is max(the turn being served at that
# priority, the owner's last pending turn + 1), and each further job of the group the
# next one. Rows go in in the arrays' order, so seq follows submission order. The
# first turns are MATERIALIZED: inlined, each would be looked up again for every row.
INSERT_JOBS = f"""
WITH given AS (
  SELECT * FROM unnest({_INSERT_ARGS}) WITH ORDINALITY AS t({_INSERT_NAMES}, ord)
), heads AS MATERIALIZED (
  SELECT p, (SELECT turn FROM jobs WHERE status = 'pending' AND priority = p
      AND run_after <= extract(epoch from now())::float8
      ORDER BY priority DESC, turn, seq LIMIT 1) AS head
  FROM (SELECT DISTINCT c_priority AS p FROM given) AS ps
), bases AS MATERIALIZED (
  SELECT g.s, g.p, greatest(coalesce(heads.head, 0), coalesce((
      SELECT turn + 1 FROM jobs WHERE status = 'pending' AND share_id = g.s
        AND priority = g.p ORDER BY turn DESC LIMIT 1), 0)) AS base
  FROM (SELECT DISTINCT c_share_id AS s, c_priority AS p FROM given) AS g
  JOIN heads ON heads.p = g.p
)
INSERT INTO jobs ({", ".join(JOB_INSERT_COLUMNS)}, turn)
SELECT {_INSERT_VALUES},
  bases.base + row_number() OVER (PARTITION BY c_share_id, c_priority ORDER BY ord) - 1
FROM given JOIN bases ON bases.s = given.c_share_id AND bases.p = given.c_priority
ORDER BY ord RETURNING seq, id
"""
# Concurrency keys: a statement ending jobs of several keys takes their admission locks
# first, in one order (migration 0021's function; see postgres/flow.py).
LOCK_KEYS = "SELECT corral_lock_keys($1::text[])"
NOTIFY = "SELECT pg_notify('corral_events', $1)"

INSERT_IDEMPOTENCY = """
INSERT INTO idempotency_keys (principal_id, key, request_hash, status_code, body, created_at,
  job_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (principal_id, key) DO NOTHING
RETURNING 1
"""
FIND_IDEMPOTENCY = (
    "SELECT request_hash, status_code, body FROM idempotency_keys "
    "WHERE principal_id = $1 AND key = $2"
)

SELECT_JOB = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"
LOCK_JOB = SELECT_JOB + " FOR UPDATE"
SELECT_JOBS = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1::text[]) ORDER BY seq"
# Sorted, so two batches touching the same jobs lock them in the same order.
# With the database's clock read in the same round trip, for a batch of finishes.
LOCK_JOBS = (
    f"SELECT {JOB_COLUMNS}, extract(epoch from now())::float8 AS db_now FROM jobs "
    "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
)
SELECT_ATTEMPTS = "SELECT * FROM attempts WHERE job_id = $1 ORDER BY number"

# The database's clock, shared by every replica, unless the caller gives a time ($1).
CLOCK = "coalesce($1::float8, extract(epoch from now())::float8)"
DB_NOW = "SELECT extract(epoch from now())::float8"


def lease_picked(picked: str) -> str:
    """The end of a claim statement: lease the rows whose ``picked_seq`` the CTE
    ``picked`` chose ($6 executor, $7 ip, $8 principal; ``clock`` gives the time),
    open their attempts, and return them in claim order. Both claims, the plain one
    here and ``postgres.placement``'s, end the same way."""
    return f"""claimed AS (
  UPDATE jobs SET status = 'running', attempt = attempt + 1, executor_id = $6,
    executor_ip = $7, lease_principal_id = $8, lease_expires_at = clock.t + lease_seconds,
    started_at = clock.t, cancel_requested = 0, stdout_size = 0, stdout_truncated = 0,
    stderr_size = 0, stderr_truncated = 0, exit_code = NULL, error_message = NULL
  FROM clock WHERE jobs.seq = ANY(ARRAY(SELECT picked_seq FROM {picked}))
    AND jobs.status = 'pending'
  RETURNING {JOB_COLUMNS}
), opened AS (
  INSERT INTO attempts (job_id, number, executor_id, executor_ip, principal_id,
    claimed_at, status)
  SELECT id, attempt, $6, $7, $8, started_at, 'running' FROM claimed
)
SELECT * FROM claimed ORDER BY priority DESC, turn, seq
"""


# $1 now (None: the database's), $2 claimer labels (jsonb array), $3 least runnable
# level, $4 project, $5 limit, $6 executor, $7 ip, $8 principal. One statement, so one
# round trip per claim: the executor is recorded as seen, the rows are picked past
# other claimers' locks, leased, and their attempts opened. While a job that asks for
# resources or no network waits, it claims nothing (see ``postgres.placement``).
# The picked rows are updated by ``seq = ANY(ARRAY(...))``, an index lookup of each:
# joined instead, the planner cannot tell how few rows the LIMIT leaves (its value
# depends on the EXISTS) and hashes every pending row, a scan of the whole queue on
# each claim planned for its parameters (the first five of every connection).
CLAIM = f"""
WITH clock AS (SELECT {CLOCK} AS t), seen AS (
  INSERT INTO executors (executor_id, principal_id, ip, registered_at, last_heartbeat, registered)
  SELECT $6, $8, $7, t, t, false FROM clock
  ON CONFLICT (executor_id) DO UPDATE SET last_heartbeat = excluded.last_heartbeat,
    ip = coalesce(excluded.ip, executors.ip)
), picked AS (
  SELECT seq AS picked_seq FROM jobs
  WHERE status = 'pending' AND run_after <= (SELECT t FROM clock)
    AND (labels IS NULL OR labels <@ $2::jsonb)
    AND runnable >= $3::integer
    AND ($4::text IS NULL OR project_id = $4)
  ORDER BY priority DESC, turn, seq
  LIMIT CASE WHEN EXISTS (SELECT 1 FROM jobs AS w WHERE w.status = 'pending' AND w.placed = 1)
    THEN 0 ELSE $5 END
  FOR UPDATE SKIP LOCKED
), {lease_picked("picked")}"""

# $1 now (None: the database's), $2 seq, $3 duration (None: the job's lease_seconds),
# $4 executor. The job row is already locked by this transaction, so only the executor
# can wait.
RENEW_ONE = f"""
WITH clock AS (SELECT {CLOCK} AS t), j AS (
  UPDATE jobs SET lease_expires_at = clock.t + coalesce($3::float8, lease_seconds)
  FROM clock WHERE seq = $2 RETURNING lease_expires_at
), e AS (
  UPDATE executors SET last_heartbeat = (SELECT t FROM clock) WHERE executor_id = $4
)
SELECT lease_expires_at FROM j
"""
# $1 executor, $2 job ids, $3 attempts, $4 now (None: the database's), $5 lease holder
# (None: any). Rows are locked in id order first.
RENEW_MANY = f"""
WITH held AS (
  SELECT jobs.seq AS held_seq FROM jobs
  JOIN unnest($2::text[], $3::int4[]) AS h(job_id, attempt)
    ON jobs.id = h.job_id AND jobs.attempt = h.attempt
  WHERE jobs.executor_id = $1 AND jobs.status = 'running'
    AND ($5::text IS NULL OR jobs.lease_principal_id = $5)
  ORDER BY jobs.id
  FOR UPDATE OF jobs
)
UPDATE jobs SET lease_expires_at =
  coalesce($4::float8, extract(epoch from now())::float8) + lease_seconds
FROM held WHERE jobs.seq = held.held_seq AND jobs.executor_id = $1 AND status = 'running'
RETURNING {JOB_COLUMNS}
"""
TOUCH_EXECUTOR = (
    "UPDATE executors SET last_heartbeat = coalesce($1::float8, extract(epoch from now())), "
    "reported_status = coalesce($3, reported_status) WHERE executor_id = $2"
)
LOCK_EXECUTORS = (
    "SELECT 1 FROM executors WHERE executor_id = ANY($1::text[]) ORDER BY executor_id FOR UPDATE"
)

# Everything a batch of finishes (or reaped leases) writes, in one statement. The
# jobs are locked by this transaction already; attempts and output rows are only
# ever written by the holder of their job's lock.
WRITE_BATCH = """
WITH j AS (
  UPDATE jobs SET status = u.status, finished_at = u.finished_at, exit_code = u.exit_code,
    error_message = u.error_message, result = u.result, run_after = u.run_after,
    lease_expires_at = NULL, stdout_size = u.stdout_size,
    stdout_truncated = u.stdout_truncated, stderr_size = u.stderr_size,
    stderr_truncated = u.stderr_truncated
  FROM unnest($2::int8[], $3::text[], $4::float8[], $5::int4[], $6::text[], $7::text[],
    $8::float8[], $9::int8[], $10::int4[], $11::int8[], $12::int4[])
    AS u(seq, status, finished_at, exit_code, error_message, result, run_after,
      stdout_size, stdout_truncated, stderr_size, stderr_truncated)
  WHERE jobs.seq = u.seq
), a AS (
  UPDATE attempts SET status = v.status, ended_at = $1, exit_code = v.exit_code,
    error_message = v.error_message
  FROM unnest($13::text[], $14::int4[], $15::text[], $16::int4[], $17::text[])
    AS v(job_id, number, status, exit_code, error_message)
  WHERE attempts.job_id = v.job_id AND attempts.number = v.number
), o AS (
  INSERT INTO job_output (job_id, attempt, stream, "offset", data)
  SELECT * FROM unnest($18::text[], $19::int4[], $20::text[], $21::int8[], $22::bytea[])
), d AS (
  -- An attempt's first output replaces what earlier attempts printed (see append_sql).
  DELETE FROM job_output USING unnest($18::text[], $19::int4[], $21::int8[])
    AS n(job_id, attempt, start)
  WHERE n.start = 0 AND job_output.job_id = n.job_id AND job_output.attempt < n.attempt
), e AS (
  UPDATE executors SET jobs_completed = jobs_completed + w.n, last_heartbeat = $1
  FROM unnest($23::text[], $24::int8[]) AS w(executor_id, n)
  WHERE executors.executor_id = w.executor_id
)
SELECT 1
"""

# $1 now, $2 limit, $3 longest lease already out of its grace (None: every lease is).
REAP_CANDIDATES = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND lease_expires_at < $1 "
    "AND ($3::float8 IS NULL OR lease_seconds <= $3) "
    "ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED"
)
# $1 executor, $2 the principal of its current registration: leases of earlier ones.
LOCK_TAKEN_OVER = (
    f"SELECT {JOB_COLUMNS} FROM jobs WHERE status = 'running' AND executor_id = $1 "
    "AND lease_principal_id IS DISTINCT FROM $2 ORDER BY id FOR UPDATE"
)
# $1 now, $2 error, $3 seq, $4 attempt: a row the reaper cannot read is failed as it is.
FAIL_UNREADABLE = """
WITH j AS (
  UPDATE jobs SET status = 'failed', finished_at = $1, error_message = $2,
    lease_expires_at = NULL WHERE seq = $3 AND status = 'running' RETURNING id
)
UPDATE attempts SET status = 'lost', ended_at = $1, error_message = 'lease expired'
FROM j WHERE attempts.job_id = j.id AND attempts.number = $4
"""
NEXT_RUN_AFTER = "SELECT min(run_after) FROM jobs WHERE status = 'pending' AND run_after > $1"

# $1 seq, $2 now, $3 job id, $4 attempt, $5 new status, $6 finished_at, $7 error,
# $8 attempt status, $9 attempt error: pending again, or cancelled if asked meanwhile.
RELEASE = """
WITH j AS (
  UPDATE jobs SET status = $5, releases = releases + 1, lease_expires_at = NULL,
    run_after = 0, finished_at = $6, error_message = $7 WHERE seq = $1
)
UPDATE attempts SET status = $8, ended_at = $2, exit_code = NULL, error_message = $9
WHERE job_id = $3 AND number = $4
"""
ATTEMPT_STATUS = "SELECT status FROM attempts WHERE job_id = $1 AND number = $2"
RETURN_UNSTARTED = """
WITH j AS (
  UPDATE jobs SET status = 'pending', releases = releases + 1, run_after = 0,
    lease_expires_at = NULL, finished_at = NULL, error_message = NULL WHERE seq = $1
)
UPDATE attempts SET status = 'released', error_message = $2 WHERE job_id = $3 AND number = $4
"""
CANCEL_REQUEST = "UPDATE jobs SET cancel_requested = 1 WHERE seq = $1"
CANCEL_NOW = "UPDATE jobs SET status = 'cancelled', finished_at = $1 WHERE seq = $2"


def append_sql(stream: str) -> str:
    """Store one chunk (when anything fit) and the stream's new size; ``stream`` is checked.

    The first chunk of an attempt's stream deletes the output of earlier attempts:
    only the current attempt's output is ever read, and keeping every retry's
    would multiply the output cap by the number of attempts.
    """
    return f"""
WITH o AS (
  INSERT INTO job_output (job_id, attempt, stream, "offset", data)
  SELECT $1, $2, '{stream}', $3, $4::bytea WHERE $4::bytea IS NOT NULL
), d AS (
  DELETE FROM job_output WHERE job_id = $1 AND attempt < $2 AND $3::int8 = 0
    AND $4::bytea IS NOT NULL
)
UPDATE jobs SET {stream}_size = $5, {stream}_truncated = $6 WHERE seq = $7
"""


READ_OUTPUT = """
SELECT "offset", data FROM job_output WHERE job_id = $1 AND attempt = $2 AND stream = $3
  AND "offset" + length(data) > $4 AND "offset" < $5
ORDER BY "offset"
"""

UPSERT_EXECUTOR = """
INSERT INTO executors (executor_id, principal_id, hostname, ip, cpu_count, memory_mb, os,
  labels, concurrency, metadata, registered_at, last_heartbeat, draining, cpus, isolation,
  network_control)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15)
ON CONFLICT (executor_id) DO UPDATE SET principal_id = excluded.principal_id,
  cpus = excluded.cpus, isolation = excluded.isolation,
  network_control = excluded.network_control,
  hostname = excluded.hostname, ip = coalesce(excluded.ip, executors.ip),
  cpu_count = excluded.cpu_count, memory_mb = excluded.memory_mb, os = excluded.os,
  labels = excluded.labels, concurrency = excluded.concurrency,
  metadata = excluded.metadata, last_heartbeat = excluded.last_heartbeat,
  draining = excluded.draining, registered = true
RETURNING *
"""

REGISTER_EXECUTOR = """
INSERT INTO executors (executor_id, principal_id, hostname, ip, cpu_count, memory_mb, os,
  labels, concurrency, metadata, registered_at, last_heartbeat, draining, cpus, isolation,
  network_control)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, 0, $13, $14, $15)
ON CONFLICT (executor_id) DO UPDATE SET principal_id = excluded.principal_id,
  cpus = excluded.cpus, isolation = excluded.isolation,
  network_control = excluded.network_control,
  hostname = excluded.hostname, ip = excluded.ip, cpu_count = excluded.cpu_count,
  memory_mb = excluded.memory_mb, os = excluded.os, labels = excluded.labels,
  concurrency = excluded.concurrency, metadata = excluded.metadata,
  registered_at = excluded.registered_at, last_heartbeat = excluded.last_heartbeat,
  draining = 0, jobs_completed = 0, reported_status = NULL, registered = true
WHERE executors.last_heartbeat < $12
  OR (NOT executors.registered AND executors.principal_id = excluded.principal_id)
RETURNING *
"""

INSERT_TOKEN = (
    "INSERT INTO api_tokens (id, name, role, token_hash, created_at, revoked, executor_id, "
    "project_id, expires_at, user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)

RECORD_MIGRATION = "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)"
SCHEMA_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version integer PRIMARY KEY, applied_at double precision NOT NULL)"
)


@dataclasses.dataclass
class BatchWrite:
    """Rows one ``WRITE_BATCH`` statement applies: job states, ended attempts, output."""

    jobs: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    attempts: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    output: list[tuple[Any, ...]] = dataclasses.field(default_factory=list)
    completed: Counter[str] = dataclasses.field(default_factory=Counter)

    def end(
        self,
        new: Job,
        result: Any,
        ended: Job,
        status: AttemptStatus,
        exit_code: int | None,
        error: str | None,
    ) -> None:
        """Queue ``new`` as the job's state and close the attempt ``ended`` was running."""
        self.jobs.append(
            (
                new.seq,
                new.status.value,
                new.finished_at,
                new.exit_code,
                new.error_message,
                result_to_json(result),
                new.run_after,
                new.stdout.size,
                int(new.stdout.truncated),
                new.stderr.size,
                int(new.stderr.truncated),
            )
        )
        self.attempts.append((ended.id, ended.attempt, status.value, exit_code, error))

    def params(self) -> list[list[Any]]:
        columns: list[list[Any]] = []
        for rows, width in ((self.jobs, 11), (self.attempts, 5), (self.output, 5)):
            columns += [[r[i] for r in rows] for i in range(width)]
        executors = sorted(self.completed)
        return [*columns, executors, [self.completed[e] for e in executors]]


def filter_sql(flt: JobFilter) -> tuple[str, list[Any]]:
    """A WHERE clause with $n placeholders for the filter's set fields, and their values."""
    fields = flt.set_fields()
    clauses = [equals(c, value, f"${n}") for n, (c, value) in enumerate(fields, start=1)]
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where, [value for _, value in fields]


# --- helpers run on a connection -------------------------------------------------------


async def job_or_404(conn: Any, job_id: str, *, lock: bool = False) -> Job:
    row = await conn.fetchrow(LOCK_JOB if lock else SELECT_JOB, job_id)
    if row is None:
        raise NotFound("job not found", job_id=job_id)
    return job_from_row(row)


async def fenced_job(conn: Any, job_id: str, ref: AttemptRef) -> Job:
    """The job, locked for this transaction, if ``ref`` still holds its lease."""
    job = await job_or_404(conn, job_id, lock=True)
    check_fence(job, ref)
    return job


def check_stream(stream: str) -> None:
    if stream not in ("stdout", "stderr"):
        raise InvalidInput("stream must be stdout or stderr", field="stream")


def fit(
    job: Job, stream: str, data: bytes, cap: int, *, truncated: bool = False
) -> tuple[Job, list[tuple[Any, ...]]]:
    """The job with ``data`` appended under the cap, and the output row to store (if any);
    ``truncated``: the sender lost output, so the stream says so."""
    check_stream(stream)
    state = job.stdout if stream == "stdout" else job.stderr
    kept, cut = outcomes.fit(state.size, data, cap)
    chunk = [(job.id, job.attempt, stream, state.size, kept)] if kept else []
    flag = cut or state.truncated or truncated
    new = outcomes.with_stream(job, stream, state.size + len(kept), flag)
    return new, chunk


async def insert_idempotency(conn: Any, record: IdempotencyRecord, job_id: str | None) -> None:
    """``job_id``: the (first) job the request made; pruning that job frees the key."""
    taken = await conn.fetchval(
        INSERT_IDEMPOTENCY,
        record.principal_id,
        record.key,
        record.request_hash,
        record.status_code,
        record.body,
        time.time(),
        job_id,
    )
    if taken is None:
        raise AlreadyExists("idempotency key already used", key=record.key)


async def end_lost(
    conn: Any, rows: list[Any], now: float, policy: RetryPolicy, why: str
) -> list[Job]:
    """End the locked running ``rows`` as lost leases, each decided alone (see ``lost``);
    a row that cannot be read is failed by its seq, so it never blocks a pass again."""
    ended_jobs = []
    batch = BatchWrite()
    for row in rows:
        try:
            job = job_from_row(row)
        except Exception as exc:
            error = lost.unreadable_row(row, exc)
            await conn.execute(FAIL_UNREADABLE, now, error, row["seq"], row["attempt"])
            continue
        new, ended = lost.decide_lost(job, now, policy)
        batch.end(new, None, job, ended, None, why)
        ended_jobs.append(new)
    keys = sorted({j.spec.concurrency_key for j in ended_jobs if j.spec.concurrency_key})
    if len(keys) > 1:  # slots of several keys free: their locks in the one order first
        await conn.execute(LOCK_KEYS, keys)
    if ended_jobs:
        await conn.execute(WRITE_BATCH, now, *batch.params())
    return ended_jobs


async def at(conn: Any, now: float | None) -> float:
    """``now``, or the database's clock when None (one round trip)."""
    if now is not None:
        return now
    return float(await conn.fetchval(DB_NOW))
