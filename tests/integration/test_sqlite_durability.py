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
from pathlib import Path

import pytest
from pydantic import ValidationError

from corral.services.container import open_store
from corral.settings import ServerSettings
from corral.store.sqlite import SqliteStore

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
