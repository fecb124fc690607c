"""SQLite plumbing: one writer thread with group commit, a small pool of readers.

SQLite allows one writer at a time, so Corral keeps exactly one long-lived
write connection on its own thread and feeds it whole operations (a Python
function run inside the transaction). Operations that arrive while a commit
is in progress are run together in the next transaction, each inside its own
SAVEPOINT so one failing operation rolls back alone: a burst of claims and
results costs one commit, not one each. Readers use separate connections,
which WAL lets run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from corral.errors import Unavailable

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]

MAX_GROUP = 256
_STOP = object()


def connect(
    path: Path, *, synchronous: str = "NORMAL", readonly: bool = False
) -> sqlite3.Connection:
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
    """The single write connection and the thread that owns it."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self._path = path
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="corral-sqlite-writer", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise Unavailable(f"cannot open SQLite database: {self._error}")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def submit(self, op: Op) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((op, future, loop))
        return future

    def _run(self) -> None:
        try:
            conn = connect(self._path, synchronous=self._synchronous)
        except sqlite3.Error as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while (batch := self._next_batch()) is not None:
                self._deliver(self._run_group(conn, batch))
        finally:
            conn.close()

    def _next_batch(self) -> list[tuple[Op, asyncio.Future[Any], asyncio.AbstractEventLoop]] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        while len(batch) < MAX_GROUP:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)  # finish this group, then stop
                break
            batch.append(item)
        return batch

    @staticmethod
    def _run_group(conn: sqlite3.Connection, batch: list[Any]) -> list[tuple[Any, Any, Any]]:
        """Run each op in its own savepoint inside one transaction; commit once."""
        outcomes: list[tuple[Any, Any, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, future, loop in batch:
                conn.execute("SAVEPOINT op")
                try:
                    outcomes.append((future, loop, (op(conn), None)))
                    conn.execute("RELEASE op")
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((future, loop, (None, exc)))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            failure = Unavailable(f"SQLite write failed: {exc}")
            return [(future, loop, (None, failure)) for _, future, loop in batch]
        return outcomes

    @staticmethod
    def _deliver(outcomes: list[tuple[Any, Any, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any]]] = {}
        for future, loop, result in outcomes:
            by_loop.setdefault(loop, []).append((future, result))
        for loop, items in by_loop.items():
            # The loop may have closed while we wrote; then nobody is waiting.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[asyncio.Future[Any], tuple[Any, BaseException | None]]]) -> None:
    for future, (value, error) in items:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class Readers:
    """A few threads, each with its own read-only connection."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        self._path = path
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
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        try:
            return op(conn)
        except sqlite3.Error as exc:
            raise Unavailable(f"SQLite read failed: {exc}") from exc

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
