"""SQLite plumbing: one long-lived write connection, a small pool of readers.

SQLite allows one writer at a time, so Corral keeps exactly one write
connection and feeds it whole operations (a Python function run inside one
transaction). Heavy reads (lists, counts) use separate connections on a few
threads, which WAL lets run beside the writer.

Durability: every connection runs with ``synchronous=FULL`` (``DURABLE``), so a
commit returns only once its WAL frames are fsynced, and a write's caller hears
of it only after that commit (group commit: see ``Writer``). Services answer
after awaiting the write, so a 201 or an accepted result survives a power loss
or an OS crash. (``NORMAL`` would fsync only at checkpoints: faster, but the
last acknowledged writes could vanish.)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from corral.errors import Unavailable

T = TypeVar("T")
Op = Callable[[sqlite3.Connection], Any]
Done = Callable[[BaseException | None], None]
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
    # A dependency's end cancels dependants through a trigger, which must fire again
    # for their own dependants (migrations/sqlite/0019): the cascade.
    conn.execute("PRAGMA recursive_triggers=ON")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


@dataclass(slots=True)
class _Done:
    """An op that ran in the open transaction; its caller hears at the commit."""

    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


class Writer:
    """The write connection: ops run on the event loop, commits on a thread, in groups.

    An op is a Python function of the connection. It runs straight from the event
    loop thread, inside the open transaction and its own SAVEPOINT (an op that
    fails undoes only itself; the first op of a transaction needs none, its undo is
    the ROLLBACK): tens of microseconds, less than a hop to another thread. Ops are
    serialised by the loop itself, so a claim is exclusive.

    Durability (group commit): the caller's future resolves only after the COMMIT
    that holds its op returned, and with ``synchronous=FULL`` that COMMIT has
    fsynced the WAL, so whatever a service answers after awaiting a write is on
    disk. A transaction of several ops commits on its own thread, so the loop keeps
    serving during the fsync; ops submitted meanwhile queue and go into the next
    transaction, so under load one fsync covers many requests. A lone op (a quiet
    moment) commits inline, which spares it two thread hops. Until its commit an op's writes are
    invisible to the readers. Checkpoints (copying the WAL into the database file)
    run on another thread, off the loop too.
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
        self._committer = _Committer()
        self._batch: list[_Done] = []  # ran in the open transaction, awaiting its commit
        self._queued: list[tuple[Op, asyncio.Future[Any]]] = []  # arrived during a commit
        self._commit_due = False  # a commit is scheduled or running
        self._committing = False  # the connection is the commit thread's
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        try:
            self._conn = connect(self._path, synchronous=self._synchronous)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpoint_conn = connect(self._path, synchronous=self._synchronous)
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open SQLite database: {exc}") from exc
        self._checkpointer.start()

    async def flush(self) -> None:
        """Wait until every op submitted so far is committed (or refused)."""
        await self._idle.wait()

    def stop(self) -> None:
        """Close; call ``flush`` first, or ops still in the transaction are rolled back."""
        self._stopping.set()
        self._committer.stop()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        if self._checkpoint_conn is not None:  # start() failed before the thread ran
            self._checkpoint_conn.close()
            self._checkpoint_conn = None
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.close()
            self._conn = None

    def connections(self) -> list[sqlite3.Connection]:
        """The open connections (the writer's and the checkpointer's), for inspection."""
        return [c for c in (self._conn, self._checkpoint_conn) if c is not None]

    def submit(self, op: Op) -> asyncio.Future[Any]:
        """Run ``op`` now (or after the commit in progress); resolve at its commit."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._conn is None:
            future.set_exception(Unavailable("SQLite store is closed"))
        elif self._committing:
            self._queued.append((op, future))
        else:
            self._run(op, future)
        return future

    def _run(self, op: Op, future: asyncio.Future[Any]) -> None:
        conn = self._conn
        assert conn is not None
        # The first op of a transaction needs no SAVEPOINT: undoing it is a ROLLBACK.
        first = not conn.in_transaction
        try:
            conn.execute("BEGIN IMMEDIATE" if first else "SAVEPOINT op")
        except sqlite3.Error as exc:  # nothing of this op ran: refuse it at once
            future.set_exception(Unavailable(f"SQLite write failed: {exc}"))
            if conn.in_transaction:  # the ops before it still get their commit
                self._commit_soon()
            return
        self._commit_soon()
        try:
            result = op(conn)
        except BaseException as exc:
            self._undo(conn, first)
            self._batch.append(_Done(future, error=_as_corral(exc)))
            if not isinstance(exc, Exception):
                raise
            return
        if not first:
            conn.execute("RELEASE op")
        self._batch.append(_Done(future, result))

    def _undo(self, conn: sqlite3.Connection, first: bool) -> None:
        """Undo the failed op's writes only; if even that fails, the whole transaction."""
        try:
            if first:  # the transaction holds nothing else
                conn.execute("ROLLBACK")
                return
            conn.execute("ROLLBACK TO op")
            conn.execute("RELEASE op")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            for done in self._batch:
                done.error = Unavailable(f"SQLite write failed: {exc}")

    def _commit_soon(self) -> None:
        """Commit once this loop iteration's other ready callbacks have added their ops."""
        if not self._commit_due:
            self._commit_due = True
            self._idle.clear()
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        batch, self._batch = self._batch, []
        self._committing = True
        if len(batch) <= 1:
            # A lone write (a quiet moment): fsync right here, sparing it the two thread
            # hops. Requests arriving meanwhile wait in the socket buffers and are read
            # together afterwards, so under load batches grow and go to the thread.
            try:
                self._commit_now()
            except sqlite3.Error as exc:
                self._committed(batch, exc)
            else:
                self._committed(batch, None)
            return
        self._committer.commit(self._commit_now, lambda failed: self._committed(batch, failed))

    def _commit_now(self) -> None:
        """COMMIT, fsync included: on the commit thread, or inline for a lone write."""
        conn = self._conn
        assert conn is not None
        if not conn.in_transaction:  # a failed op rolled the whole transaction back
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise

    def _committed(self, batch: list[_Done], failed: BaseException | None) -> None:
        for done in batch:
            if done.future.done():  # the caller went away (cancelled); the write stands
                continue
            if failed is not None:
                done.future.set_exception(Unavailable(f"SQLite commit failed: {failed}"))
            elif done.error is not None:
                done.future.set_exception(done.error)
            else:
                done.future.set_result(done.result)
        self._committing = False
        self._commit_due = False
        queued, self._queued = self._queued, []
        for op, future in queued:
            if self._conn is None:
                future.set_exception(Unavailable("SQLite store is closed"))
            else:
                self._run(op, future)
        if not self._commit_due:
            self._idle.set()

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


class _Committer:
    """The thread that runs the writer's COMMITs (and their fsync) off the event loop.

    A queue in, ``call_soon_threadsafe`` out: a commit costs one hand-over each way,
    where an executor's futures took several more hops per commit.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], None], Done] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(
            target=self._serve, name="corral-sqlite-commit", daemon=True
        )

    def commit(self, run: Callable[[], None], done: Done) -> None:
        """Call ``run`` on the thread, then ``done(error or None)`` on this event loop."""
        self._loop = asyncio.get_running_loop()
        if not self._thread.is_alive():
            self._thread.start()
        self._jobs.put((run, done))

    def stop(self) -> None:
        """Wait for the commits handed over so far; their ``done`` runs if the loop does."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            run, done = job
            failed: BaseException | None = None
            try:
                run()
            except BaseException as exc:  # handed to the loop, which fails the batch
                failed = exc
            assert self._loop is not None
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(done, failed)


def _as_corral(exc: BaseException) -> BaseException:
    """A database error inside an op is the store being unavailable, as before."""
    if isinstance(exc, sqlite3.Error):
        return Unavailable(f"SQLite write failed: {exc}")
    return exc


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
