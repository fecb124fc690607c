"""Retention where the engines differ: PostgreSQL replicas taking turns, the purge's
indexes on PostgreSQL's planner, and SQLite giving freed pages back to the disk."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from corral.domain.retention import Stream
from corral.services.metrics import Metrics
from corral.services.retention import RetentionService
from corral.store import retention_common as rc
from corral.store.postgres.retention import RETENTION_LOCK
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.retention import INCREMENTAL
from corral.store.sqlite.store import SqliteStore
from tests.contract.contract_support import NOW
from tests.contract.retention_support import DAY, count, ended, job

LATER = NOW + 40 * DAY


def service(store: PostgresStore | SqliteStore, batch: int = 200) -> RetentionService:
    return RetentionService(store, Metrics(), 30 * DAY, batch=batch, pace=False)


@pytest.fixture
async def replicas(pg_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    first, second = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_replica_skips_its_turn_while_another_purges(
    replicas: tuple[PostgresStore, PostgresStore], pg_dsn: str
) -> None:
    first, second = replicas
    for n in range(3):
        await ended(first, job(f"old-{n}"), NOW)
    holder = await asyncpg.connect(pg_dsn)  # a batch of another replica, mid-way
    purge = holder.transaction()
    await purge.start()
    await holder.execute("SELECT pg_advisory_xact_lock($1)", RETENTION_LOCK)
    try:
        skipped = await service(second).run_pass(LATER)
        assert skipped.busy and skipped.pruned.jobs == 0
        assert await count(second, "jobs") == 3

        by_hand = asyncio.create_task(service(first).run_pass(LATER, wait=True))
        await asyncio.sleep(0.3)
        assert not by_hand.done()  # `corral prune` waits for its turn...
    finally:
        await purge.rollback()
        await holder.close()
    assert (await asyncio.wait_for(by_hand, 10)).pruned.jobs == 3  # ...then takes it


async def test_two_replicas_purging_at_once_delete_each_job_once(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    await first.insert_jobs([job(f"j-{n}") for n in range(300)])
    async with first._tx() as conn:  # 300 jobs that ended 40 days ago, set in one go
        await conn.execute(
            "UPDATE jobs SET status = 'completed', finished_at = $1, attempt = 1", NOW
        )
        await conn.execute(
            "INSERT INTO attempts (job_id, number, executor_id, claimed_at, status) "
            "SELECT id, 1, 'e', $1, 'completed' FROM jobs",
            NOW,
        )
    reports = await asyncio.gather(
        *(service(s, batch=20).run_pass(LATER, wait=True) for s in (first, second, first))
    )
    assert sum(r.pruned.jobs for r in reports) == 300
    assert sum(r.pruned.attempts for r in reports) == 300
    assert (await count(first, "jobs"), await count(first, "attempts")) == (0, 0)


@pytest.mark.parametrize("stream", list(Stream))
async def test_the_purge_walks_its_index_on_postgres(pg_dsn: str, stream: Stream) -> None:
    """The partial indexes' predicates must be provable from the walk's WHERE clause,
    or PostgreSQL would scan the whole table on every batch."""
    sql = rc.walk_sql(stream, {"cutoff": "$1", "key": "$2", "seq": "$3", "limit": "$4"}.get, False)
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", 1.0, 0.0, 0, 10))
    finally:
        await conn.close()
    assert rc.INDEXES[stream] in plan


async def test_a_new_sqlite_database_gives_freed_pages_back(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "corral.db")
    await store.open()
    try:
        for n in range(40):
            await ended(store, job(f"old-{n}"), NOW, output=bytes(range(256)) * 250)
        await store._writer.flush()
        before = await store.database_size()
        report = await service(store).run_pass(LATER)
        after = await store.database_size()
    finally:
        await store.close()
    assert _auto_vacuum(tmp_path / "corral.db") == INCREMENTAL
    assert report.pruned.jobs == 40
    assert report.reclaimed_bytes > 0
    assert after < before // 2  # the output's pages are gone from the file


async def test_a_small_existing_sqlite_database_is_converted_at_open(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    old = sqlite3.connect(path)  # made before incremental vacuum existed here
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE leftover (x)")
    old.close()
    assert _auto_vacuum(path) == 0

    store = SqliteStore(path)
    await store.open()
    await store.close()

    assert _auto_vacuum(path) == INCREMENTAL
    assert _tables(path) >= {"leftover", "jobs"}


def _auto_vacuum(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
