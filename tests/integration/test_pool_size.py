"""``--database-pool-size`` bounds the PostgreSQL connections one replica opens: its pool,
plus the one connection that LISTENs. docs/deploy.md sizes ``max_connections`` from it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from corral.services.container import open_store
from corral.settings import ServerSettings
from tests.pg_server import PgServer

COUNT = (
    "SELECT application_name, count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid != pg_backend_pid() GROUP BY 1"
)


async def connections_under_load(dsn: str, data: Path, pool_size: int) -> dict[str, int]:
    settings = ServerSettings(data_dir=data, database_url=dsn, database_pool_size=pool_size)
    store = open_store(settings)
    await store.open()
    try:
        await asyncio.gather(*(store.ping() for _ in range(50)))  # all want a connection
        conn = await asyncpg.connect(dsn)
        try:
            return {row[0]: row[1] for row in await conn.fetch(COUNT)}
        finally:
            await conn.close()
    finally:
        await store.close()


def test_a_replica_opens_its_pool_size_of_connections_and_one_to_listen(
    pg_server: PgServer, tmp_path: Path
) -> None:
    dsn = asyncio.run(pg_server.new_database())
    small = asyncio.run(connections_under_load(dsn, tmp_path, 3))
    assert small == {"corral": 3, "corral-listen": 1}
    default = asyncio.run(
        connections_under_load(dsn, tmp_path, ServerSettings().database_pool_size)
    )
    assert 3 < default["corral"] <= 10 and default["corral-listen"] == 1
