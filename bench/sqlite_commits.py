"""SQLite write benchmark: durable writes per second through the store's ``Writer``.

Each simulated client spends ``--work-us`` of CPU (parsing a request), then
awaits one small write, as a route would. With ``synchronous=FULL`` every commit
fsyncs; the writer groups the writes that arrive during one commit into the next,
so the figures show what fsync costs at 1, 8 and 64 concurrent clients. Prints
figures, asserts nothing; the database lives in the system's temporary directory
(use ``TMPDIR`` to measure another disk).

    PYTHONPATH=$PWD/src .venv/bin/python bench/sqlite_commits.py [--work-us 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from corral.store.sqlite.engine import Writer, connect


def busy(microseconds: float) -> None:
    end = time.perf_counter() + microseconds / 1e6
    while time.perf_counter() < end:
        pass


def insert(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (v) VALUES ('x')")


async def run(clients: int, writes: int, work_us: float) -> tuple[float, float, float]:
    """(writes/s, p50 ms, p99 ms) for ``clients`` concurrent writers."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        setup = connect(path)
        setup.execute("CREATE TABLE t (k INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
        setup.close()
        writer = Writer(path)
        writer.start()
        waits: list[float] = []

        async def client() -> None:
            for _ in range(writes // clients):
                busy(work_us)
                started = time.perf_counter()
                await writer.submit(insert)
                waits.append(time.perf_counter() - started)
                await asyncio.sleep(0)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
        await writer.flush()
        writer.stop()
    waits.sort()
    return len(waits) / elapsed, waits[len(waits) // 2] * 1e3, waits[int(len(waits) * 0.99)] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-us", type=float, default=200.0)
    parser.add_argument("--writes", type=int, default=1600)
    args = parser.parse_args()
    for clients in (1, 8, 64):
        rate, p50, p99 = asyncio.run(run(clients, max(args.writes, clients), args.work_us))
        print(
            f"[sqlite] {clients:2d} clients, {args.work_us:.0f} us of work per write: "
            f"{rate:,.0f} durable writes/s, wait p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )


if __name__ == "__main__":
    main()
