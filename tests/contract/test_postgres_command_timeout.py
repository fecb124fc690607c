"""A PostgreSQL statement stuck past ``--database-command-timeout`` frees its request.

A statement waiting on a lock another connection holds (or on a server that stopped
answering) is cancelled after the timeout and its request answers 503, logged once;
the connection then serves again. What takes what it takes (a migration, the wait for
another replica's, VACUUM) is not bounded by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from corral.domain.states import JobStatus
from corral.errors import Unavailable
from corral.services.container import open_store
from corral.settings import ServerSettings
from corral.store.postgres import sql as q
from corral.store.postgres.store import PostgresStore
from tests.contract.contract_support import NOW, new_job

TIMEOUT = 0.3
WAIT = 10.0  # generous upper bound; each wait ends as soon as what it waits for happens


@pytest.fixture
async def holder(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session on the database, to hold the locks the store's statements wait on."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_statement_waiting_on_a_lock_past_the_timeout_is_unavailable_and_logged_once(
    pg_dsn: str,
    holder: asyncpg.Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CORRAL_DATABASE_COMMAND_TIMEOUT", str(TIMEOUT))
    settings = ServerSettings(data_dir=tmp_path, database_url=pg_dsn, database_pool_size=1)
    store = open_store(settings)  # one connection: the one that timed out serves again
    await store.open()
    try:
        await store.insert_jobs([new_job("j1")])
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM jobs WHERE id = 'j1' FOR UPDATE")
            started = time.monotonic()
            with pytest.raises(Unavailable) as refused:
                await asyncio.wait_for(store.cancel("j1", NOW), WAIT)
            waited = time.monotonic() - started
        assert TIMEOUT <= waited < WAIT
        assert refused.value.retry_after is not None  # a 503 with Retry-After, any dialect
        actions = [getattr(r, "action", None) for r in caplog.records]
        assert actions.count("database_statement_timeout") == 1
        assert "database_unreachable" not in actions  # the database answered all along
        cancelled = await asyncio.wait_for(store.cancel("j1", NOW), WAIT)
        assert cancelled.status is JobStatus.CANCELLED
    finally:
        await store.close()


async def test_a_replica_waits_out_another_replicas_migration_longer_than_the_timeout(
    pg_dsn: str, holder: asyncpg.Connection
) -> None:
    await holder.execute("SELECT pg_advisory_lock($1)", q.MIGRATION_LOCK)
    store = PostgresStore(pg_dsn, command_timeout=TIMEOUT)
    opening = asyncio.create_task(store.open())
    try:
        await asyncio.sleep(3 * TIMEOUT)
        assert not opening.done()
        await holder.execute("SELECT pg_advisory_unlock($1)", q.MIGRATION_LOCK)
        await asyncio.wait_for(opening, WAIT)
        await store.ping()
    finally:
        opening.cancel()
        await store.close()


async def test_vacuum_waits_for_its_lock_longer_than_the_timeout(
    pg_dsn: str, holder: asyncpg.Connection
) -> None:
    store = PostgresStore(pg_dsn, command_timeout=TIMEOUT)
    await store.open()
    compacting: asyncio.Task[None] | None = None
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE job_deps IN SHARE UPDATE EXCLUSIVE MODE")
            compacting = asyncio.create_task(store.compact())
            await asyncio.sleep(3 * TIMEOUT)
            assert not compacting.done()
        await asyncio.wait_for(compacting, WAIT)
    finally:
        if compacting is not None:
            compacting.cancel()
        await store.close()
