"""The SQLite writer's group commit: ops of one loop pass share a transaction, and an op
that fails undoes only itself, whether it opened the transaction or joined it."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from corral.store.sqlite.engine import Writer


def insert(value: str, fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def op(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        if fail:
            raise ValueError(f"{value} refused")
        return value

    return op


def committed(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY v")]
    finally:
        conn.close()


@pytest.mark.parametrize("failing", [0, 1, 2])
async def test_a_failing_op_undoes_only_itself(tmp_path: Path, failing: int) -> None:
    path = tmp_path / "w.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (v TEXT)")
    setup.close()
    writer = Writer(path)
    writer.start()
    try:
        names = ["a", "b", "c"]
        futures = [writer.submit(insert(n, fail=i == failing)) for i, n in enumerate(names)]
        results = await asyncio.gather(*futures, return_exceptions=True)
        await writer.flush()
    finally:
        writer.stop()
    assert isinstance(results[failing], ValueError)
    kept = [n for i, n in enumerate(names) if i != failing]
    assert [r for r in results if not isinstance(r, BaseException)] == kept
    assert committed(path) == kept
