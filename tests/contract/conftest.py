"""One contract suite, two adapters: every test here runs on SQLite and on PostgreSQL.

The PostgreSQL server starts only when a PostgreSQL test runs (once per
session); each PostgreSQL test gets its own database copied from a migrated
template, so tests never see each other's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.store.base import Store
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.pg_server import PgServer


@pytest.fixture
async def pg_dsn(pg_server: PgServer) -> AsyncIterator[str]:
    """A fresh migrated PostgreSQL database for this test."""
    dsn = await pg_server.new_database()
    yield dsn
    await pg_server.drop_database(dsn)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An opened store of each backend, empty."""
    server: PgServer | None = None
    dsn = ""
    opened: Store
    if request.param == "sqlite":
        opened = SqliteStore(tmp_path / "corral.db")
    else:
        server = request.getfixturevalue("pg_server")
        dsn = await server.new_database()
        opened = PostgresStore(dsn)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
        if server is not None:
            await server.drop_database(dsn)
