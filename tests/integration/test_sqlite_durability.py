"""Item 11: SQLite answers only what is on disk.

A 201 or an accepted result is sent after the write's commit returns; with
``synchronous=FULL`` that commit has fsynced the WAL, so the answer survives a
power loss. ``NORMAL`` (the old setting) syncs only at checkpoints. These tests
read the setting back from every connection the store opened, as SQLite sees it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.errors import Unavailable
from corral.services.container import open_store
from corral.settings import ServerSettings
from corral.store.sqlite.engine import Writer, connect
from corral.store.sqlite.store import SqliteStore

FULL = 2  # what ``PRAGMA synchronous`` reads for FULL


def _synchronous(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_item11_every_sqlite_connection_fsyncs_each_commit(tmp_path: Path) -> None:
    store = open_store(ServerSettings(data_dir=tmp_path))  # the server's default settings
    assert isinstance(store, SqliteStore)
    await store.open()
    try:
        both = threading.Barrier(2, timeout=5)

        def on_reader(conn: sqlite3.Connection) -> int:
            both.wait()  # two reads at once: each reader thread opens its connection
            return _synchronous(conn)

        assert await asyncio.gather(
            store._readers.run(on_reader), store._readers.run(on_reader)
        ) == [FULL, FULL]
        assert await store._writer.submit(_synchronous) == FULL
        connections = store._writer.connections() + store._readers.connections()
        assert len(connections) == 4  # writer, checkpointer, two readers
        assert [_synchronous(conn) for conn in connections] == [FULL] * 4
    finally:
        await store.close()


@pytest.mark.parametrize("weaker", ["NORMAL", "OFF"])
def test_item11_settings_refuse_a_synchronous_level_that_loses_answers(weaker: str) -> None:
    with pytest.raises(ValidationError):
        ServerSettings(sqlite_synchronous=weaker)
    assert ServerSettings().sqlite_synchronous == "FULL"


def _writer(tmp_path: Path) -> tuple[Writer, Path]:
    path = tmp_path / "w.db"
    setup = connect(path)
    setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
    setup.close()
    writer = Writer(path)
    writer.start()
    return writer, path


def _insert(key: str, fail: bool = False) -> Callable[[sqlite3.Connection], str]:
    def op(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (?)", (key,))
        if fail:
            raise ValueError(key)
        return key

    return op


async def test_item11_group_commit_answers_only_what_is_committed(tmp_path: Path) -> None:
    """Many writes at once share commits; each caller hears only once its write is
    committed (so fsynced): a separate connection already sees it at that moment."""
    writer, path = _writer(tmp_path)
    outsider = sqlite3.connect(path)
    try:

        async def write_then_look(key: str) -> bool:
            await writer.submit(_insert(key))
            found = outsider.execute("SELECT 1 FROM t WHERE k = ?", (key,)).fetchone()
            return found is not None

        # one at a time (each commits alone, inline), then many at once (grouped)
        assert all([await write_then_look(f"alone{n}") for n in range(20)])
        seen = await asyncio.gather(*(write_then_look(f"k{n}") for n in range(200)))
        assert all(seen)
        assert outsider.execute("SELECT count(*) FROM t").fetchone()[0] == 220
    finally:
        outsider.close()
        await writer.flush()
        writer.stop()


async def test_item11_a_failed_write_in_a_group_undoes_only_itself(tmp_path: Path) -> None:
    writer, path = _writer(tmp_path)
    try:
        answers = await asyncio.gather(
            writer.submit(_insert("a")),
            writer.submit(_insert("b", fail=True)),
            writer.submit(_insert("a")),  # the key is taken: a database error, its own
            writer.submit(_insert("c")),
            return_exceptions=True,
        )
        assert answers[0] == "a" and answers[3] == "c"
        assert isinstance(answers[1], ValueError)
        assert isinstance(answers[2], Unavailable)
    finally:
        await writer.flush()
        writer.stop()
    check = sqlite3.connect(path)
    assert [r[0] for r in check.execute("SELECT k FROM t ORDER BY k")] == ["a", "c"]
    check.close()


async def test_item11_closing_commits_every_acknowledged_write_first(tmp_path: Path) -> None:
    writer, path = _writer(tmp_path)
    pending = [writer.submit(_insert(f"k{n}")) for n in range(50)]
    await writer.flush()
    writer.stop()
    assert [f.result() for f in pending] == [f"k{n}" for n in range(50)]
    with pytest.raises(Unavailable):
        await writer.submit(_insert("late"))
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone()[0] == 50
    check.close()
