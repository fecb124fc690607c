"""Helpers of the retention contract tests: jobs that ended at a given time, and the
raw row counts that show nothing was left behind (read with each engine's own driver,
past the store, so a store bug cannot hide its own leftovers)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator

import asyncpg

from corral.domain.files import NewFile
from corral.domain.jobs import JobSpec, NewJob, Outcome
from corral.domain.states import JobStatus
from corral.store.base import IdempotencyRecord, Store
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.contract.contract_support import NOW, POLICY, claim_request, ref

DAY = 86400.0

# Rows that point at a job (or a file) no longer there: each count must stay 0.
ORPHANS = {
    "attempts": "SELECT count(*) FROM attempts AS a "
    "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = a.job_id)",
    "job_output": "SELECT count(*) FROM job_output AS o "
    "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = o.job_id)",
    "artifacts": "SELECT count(*) FROM files AS f WHERE f.job_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = f.job_id)",
    "file_chunks": "SELECT count(*) FROM file_chunks AS c "
    "WHERE NOT EXISTS (SELECT 1 FROM files WHERE files.id = c.file_id)",
    "idempotency_keys": "SELECT count(*) FROM idempotency_keys AS k WHERE k.job_id IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = k.job_id)",
    "job_deps": "SELECT count(*) FROM job_deps AS d "
    "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.id = d.job_id)",
    "workflows": "SELECT count(*) FROM workflows AS w "
    "WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.workflow_id = w.id)",
}


async def scalar(store: Store, sql: str) -> int:
    """One number, read past the store with the engine's own driver."""
    if isinstance(store, SqliteStore):
        conn = sqlite3.connect(store.path)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    assert isinstance(store, PostgresStore)
    pg = await asyncpg.connect(store.dsn)
    try:
        return int(await pg.fetchval(sql))
    finally:
        await pg.close()


async def orphans(store: Store) -> dict[str, int]:
    return {name: await scalar(store, sql) for name, sql in ORPHANS.items()}


async def count(store: Store, table: str) -> int:
    return await scalar(store, f"SELECT count(*) FROM {table}")


def job(job_id: str, retention_days: int | None = None, **fields: object) -> NewJob:
    spec = JobSpec(command=f"echo {job_id}", retention_days=retention_days)
    return NewJob(
        id=job_id, spec=spec, priority=0, owner_id="owner-1", created_at=NOW - 100, **fields
    )  # type: ignore[arg-type]


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def ended(
    store: Store,
    new: NewJob,
    at: float,
    status: JobStatus = JobStatus.COMPLETED,
    *,
    key: str | None = None,
    artifact: bool = False,
    output: bytes = b"hello\n",
) -> None:
    """Insert ``new`` (with an idempotency record under ``key``), run it at ``at`` with
    output (and an artifact), and end it with ``status`` a second later."""
    record = None if key is None else IdempotencyRecord("alice", key, f"h-{key}", 201, b"{}")
    await store.insert_jobs([new], record)
    if status is JobStatus.CANCELLED:
        await store.cancel(new.id, at + 1)
        return
    (claimed,) = await store.claim(claim_request(), at)
    assert claimed.id == new.id
    await store.append_output(new.id, ref(), "stdout", output)
    if artifact:
        meta = NewFile(
            id=f"{new.id}-artifact",
            owner_id="owner-1",
            filename="out.txt",
            content_type="text/plain",
            created_at=at,
            expires_at=at + 1000 * DAY,  # far off: only the job's deletion takes it
            job_id=new.id,
            attempt=1,
            path="out.txt",
        )
        await store.create_file(meta, pieces(b"x" * 100, b"y" * 100), 1000, fence=ref())
    outcome = Outcome(status, exit_code=0 if status is JobStatus.COMPLETED else 1, stderr="e")
    await store.finish(new.id, ref(), outcome, at + 1, POLICY)
