"""SQLite plumbing: one long-lived write connection, a small pool of readers.

SQLite allows one writer at a time, so Corral keeps exactly one write
connection and feeds it whole operations (a Python function run inside one
transaction). Heavy reads (lists, counts) use separate connections on a few
threads, which WAL lets run beside the writer.

Durability: every connection runs with ``synchronous=FULL`` (``DURABLE``), so a
commit returns only once its WAL frames are fsynced. Services answer after the
commit returns, so a 201 or an accepted result survives a power loss or an OS
crash. (``NORMAL`` would fsync only at checkpoints: faster, but the last
acknowledged writes could vanish.)
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corral.errors import Unavailable

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
DURABLE = "FULL"  # fsync the WAL on every commit; EXTRA also syncs the directory


def connect(
    path: Path, *, synchronous: str = DURABLE, readonly: bool = False
) -> sqlite3.Connection:
    """Every connection of the store comes from here, so each has the same durability."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA temp_store=MEMORY")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class Writer:
    """The write connection, used straight from the event loop thread.

    A SQLite write here takes tens of microseconds plus one fsync of the WAL
    (synchronous=FULL: about 0.3 ms on the benchmark machine's disk), which is
    still less than the GIL convoy a busy writer thread suffers while the loop
    parses HTTP. Ops run to completion without awaiting, so they are serialised
    by the loop itself and each one is its own transaction, durable when
    ``submit`` returns. Checkpoints (copying the WAL into the database file and
    fsyncing it) run on a background thread so they never stall the loop.
    """

    def __init__(
        self, path: Path, synchronous: str = DURABLE, checkpoint_every: float = 1.0
    ) -> None:
        self._path = path
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_every = checkpoint_every
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="corral-sqlite-checkpoint", daemon=True
        )

    def start(self) -> None:
        try:
            self._conn = connect(self._path, synchronous=self._synchronous)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoint_conn = connect(self._path, synchronous=self._synchronous)
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open SQLite database: {exc}") from exc
        self._checkpointer.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        if self._checkpoint_conn is not None:  # start() failed before the thread ran
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def connections(self) -> list[sqlite3.Connection]:
        """The open connections (the writer's and the checkpointer's), for inspection."""
        return [c for c in (self._conn, self._checkpoint_conn) if c is not None]

    def submit(self, op: Op) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(self.run(op))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def run(self, op: Op) -> Any:
        conn = self._conn
        if conn is None:
            raise Unavailable("SQLite store is closed")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = op(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise Unavailable(f"SQLite write failed: {exc}") from exc
        return result

    def _checkpoint_loop(self) -> None:
        conn = self._checkpoint_conn
        if conn is None:
            return
        try:
            while not self._stopping.wait(self._checkpoint_every):
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            self._checkpoint_conn = None
            conn.close()


class Readers:
    """A few threads, each with its own read-only connection."""

    def __init__(self, path: Path, threads: int = 2, synchronous: str = DURABLE) -> None:
        self._path = path
        self._synchronous = synchronous
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="corral-sqlite-read"
        )
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    async def run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, op)

    def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, synchronous=self._synchronous, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        try:
            return op(conn)
        except sqlite3.Error as exc:
            raise Unavailable(f"SQLite read failed: {exc}") from exc

    def connections(self) -> list[sqlite3.Connection]:
        """The connections the reader threads opened so far, for inspection."""
        with self._lock:
            return list(self._conns)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
