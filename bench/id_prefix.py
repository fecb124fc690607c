"""Id prefix benchmark: finding the jobs whose id starts with 8 typed characters (what
`corral status 3f2a9c1e` asks the server), among many jobs, on each store. Prints
figures and PostgreSQL's plan, asserts nothing.

SQLite walks the UNIQUE index on ``id`` as a range; PostgreSQL answers ``LIKE
'prefix%'`` from ``jobs_id_pattern`` (text_pattern_ops, migration 0015).

    PYTHONPATH=src .venv/bin/python bench/id_prefix.py [--jobs N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corral.store.base import JobQuery, Store  # noqa: E402
from corral.store.postgres.store import PostgresStore  # noqa: E402
from corral.store.sqlite.store import SqliteStore  # noqa: E402
from tests.contract.contract_support import new_job  # noqa: E402
from tests.pg_server import PgServer  # noqa: E402

BATCH = 5000


async def measure(store: Store, name: str, count: int) -> None:
    await store.open()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for start in range(0, count, BATCH):
        await store.insert_jobs([new_job(j) for j in ids[start : start + BATCH]])
    probes = ids[:: max(1, count // 100)]
    began = time.perf_counter()
    for probe in probes:
        await store.page_jobs(JobQuery(id_prefix=probe[:8]), 11)
    each = (time.perf_counter() - began) / len(probes) * 1000
    print(f"{name}: {count} jobs, one 8-character prefix lookup {each:.2f} ms")
    if isinstance(store, PostgresStore):
        async with store._conn() as conn:
            sql = "EXPLAIN SELECT * FROM jobs WHERE id LIKE $1 ORDER BY seq DESC LIMIT 11"
            for row in await conn.fetch(sql, probes[0][:8] + "%"):
                print("  " + row[0])
    await store.close()


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await measure(SqliteStore(Path(folder) / "bench.db"), "sqlite", count)
    server = PgServer()
    server.start()
    try:
        await measure(PostgresStore(await server.new_database()), "postgres", count)
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().jobs))
