"""The PostgreSQL adapter: several dispatcher replicas sharing one database.

Where SQLite serialises every writer, here many transactions run at once, so
exclusivity comes from row locks: claims pick rows with ``FOR UPDATE SKIP
LOCKED`` (claimers never wait on each other), and every fenced write first
locks its job row (``FOR UPDATE``) before ``check_fence`` looks at it.

Deadlock freedom rests on one order: job rows before executor rows. Job rows
are locked in id order when a statement takes several; executor rows are
touched last (and in id order when several). A claim holds only pending rows
nobody else waits for, so its wait for an executor row closes no cycle. The
triggers that admit a job's dependants lock their concurrency keys in the order they
meet them, so two ends can still meet in a cycle: whatever ends jobs runs through
``_in_tx``, which runs a transaction PostgreSQL rolled back again from its start.

The decisions (fencing, retries, output cap) are the pure domain functions the
SQLite adapter uses; this module only moves rows. Batches are applied with one
``unnest`` statement (see ``postgres.sql``), so a claim costs one round trip and
a batch of finishes four, whatever its size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import asyncpg

from corral.domain.jobs import Attempt, ClaimRequest, Job, NewJob
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, Unavailable
from corral.store.base import IdempotencyRecord, Inserted, JobFilter, Listener, WorkflowRecord
from corral.store.migration_files import load_migrations
from corral.store.postgres import deps, flow, retry
from corral.store.postgres import sql as q
from corral.store.postgres.claim import claim_args, claim_in
from corral.store.postgres.counts import PostgresCounts
from corral.store.postgres.deps import PostgresDependencies
from corral.store.postgres.files import PostgresFiles
from corral.store.postgres.fleet import PostgresFleet
from corral.store.postgres.flow import PostgresFlow
from corral.store.postgres.idempotency import PostgresIdempotency
from corral.store.postgres.leases import PostgresLeases
from corral.store.postgres.listen import Listening
from corral.store.postgres.outage import (
    UNAVAILABLE,
    Outage,
    quiet_pool_warnings,
    statement_timed_out,
)
from corral.store.postgres.pages import PostgresPages
from corral.store.postgres.projects import PostgresProjects
from corral.store.postgres.retention import PostgresRetention
from corral.store.postgres.schedules import PostgresSchedules
from corral.store.postgres.sessions import PostgresSessions
from corral.store.postgres.users import PostgresUsers
from corral.store.rows import (
    JOB_COLUMNS,
    attempt_from_row,
    job_from_row,
    new_job_params,
    status_counts,
)
from corral.store.shared import SharedOperations

log = logging.getLogger("corral.store.postgres")
T = TypeVar("T")

# How long opening a connection may take: past it the database counts as unreachable
# (a request answers 503 rather than hang on a host that does not answer at all).
CONNECT_TIMEOUT = 5.0
# How long one statement may run (``--database-command-timeout``): far past any Corral
# sends, which take milliseconds, yet short enough that a statement stuck on a lock or
# on a server that stopped answering frees its request and its connection (503).
COMMAND_TIMEOUT = 30.0
ANALYZE_AFTER_INSERTS = 10_000


class PostgresStore(
    PostgresCounts,
    PostgresFlow,
    PostgresDependencies,
    PostgresFiles,
    PostgresUsers,
    PostgresSessions,
    PostgresFleet,
    PostgresIdempotency,
    PostgresProjects,
    PostgresPages,
    PostgresSchedules,
    PostgresRetention,
    PostgresLeases,
    SharedOperations,
):
    """``Store`` on a PostgreSQL database shared by any number of dispatchers; files live
    in ``postgres.files``, accounts in ``postgres.users``."""

    backend = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        output_cap: int = 1 << 20,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float = COMMAND_TIMEOUT,
    ) -> None:
        self.dsn = dsn
        self.output_cap = output_cap
        self.command_timeout = command_timeout
        self._min_size = min_size
        self._max_size = max_size
        self._pool: Any = None
        self._listeners: list[Listener] = []
        self._listening = Listening(dsn, self._deliver, CONNECT_TIMEOUT)
        self._outage = Outage()
        self._inserted_since_analyze = 0
        self._analyzer: asyncio.Task[None] | None = None

    # --- lifecycle --------------------------------------------------------------
    async def open(self) -> None:
        quiet_pool_warnings()
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._min_size,
                max_size=self._max_size,
                # Short OLTP statements: JIT compilation only ever costs time here.
                server_settings={"jit": "off", "application_name": "corral"},
                reset=_keep_session,
                timeout=CONNECT_TIMEOUT,
                command_timeout=self.command_timeout,
            )
        except q.CONNECTION_ERRORS as exc:
            raise Unavailable(f"cannot reach PostgreSQL: {exc}") from exc
        try:
            await self._migrate()
            await self._listening.start()
        except BaseException as exc:
            await self._pool.close()
            self._pool = None
            if isinstance(exc, q.CONNECTION_ERRORS):
                raise Unavailable(f"cannot reach PostgreSQL: {exc}") from exc
            raise

    async def close(self) -> None:
        if self._analyzer is not None:
            await asyncio.gather(self._analyzer, return_exceptions=True)
        await self._listening.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        await self._fetchval("SELECT 1")

    async def database_size(self) -> int:
        return int(await self._fetchval("SELECT pg_database_size(current_database())"))

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        """A pooled connection; losing the server, or a statement running past the
        command timeout, surfaces as ``Unavailable`` (503).

        Nothing more is needed to come back: the pool drops a connection that broke
        and opens a new one at the next acquire, once the database answers again. A
        timed-out statement was cancelled on the server (asyncpg asks it to), and the
        connection serves the next statement once the server confirms.
        """
        if self._pool is None:
            raise Unavailable("the PostgreSQL store is not open")
        try:
            async with self._pool.acquire() as conn:
                try:
                    yield conn
                except TimeoutError as exc:  # in the body: the command timeout, not a connect
                    statement_timed_out(self.command_timeout)
                    raise Unavailable(UNAVAILABLE) from exc
        except q.CONNECTION_ERRORS as exc:
            self._outage.failed(exc)
            raise Unavailable(UNAVAILABLE) from exc
        except retry.ROLLED_BACK as exc:
            # Rolled back on each of ``_in_tx``'s tries, or in a transaction not run by it.
            log.warning(
                "PostgreSQL rolled a transaction back: %s",
                exc,
                extra={"action": "transaction_rolled_back", "sqlstate": exc.sqlstate},
            )
            raise Unavailable("the database rolled the transaction back; try again") from exc
        self._outage.answered()

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Any]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def _in_tx(self, work: retry.Work[T], *, one_statement: bool = False) -> T:
        """``work(conn)`` in a transaction, run again from its start if the database
        rolls it back (``postgres.retry``): the way to write anything that ends jobs.

        ``one_statement``: ``work`` sends a single statement, a transaction of its own,
        so no BEGIN and COMMIT round trips are added around it.
        """

        async def once(conn: Any) -> T:
            if one_statement:
                return await work(conn)
            async with conn.transaction():
                return await work(conn)

        async with self._conn() as conn:
            return await retry.rerun(lambda: once(conn))

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._conn() as conn:
            rows: list[Any] = await conn.fetch(sql, *args)
        return rows

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with self._conn() as conn:
            return await conn.fetchrow(sql, *args)

    async def _fetchval(self, sql: str, *args: Any) -> Any:
        async with self._conn() as conn:
            return await conn.fetchval(sql, *args)

    async def _execute(self, sql: str, *args: Any) -> str:
        """Run one statement; returns its status tag, e.g. ``DELETE 0``."""
        async with self._conn() as conn:
            status: str = await conn.execute(sql, *args)
        return status

    async def _migrate(self) -> None:
        """Apply pending scripts; the advisory lock lets replicas start at the same time.

        Neither the wait for another replica's migration nor a script on a large table
        is bounded by the command timeout: a replica must not give up half way.
        """
        async with self._conn() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", q.MIGRATION_LOCK, timeout=q.UNHURRIED)
            try:
                await conn.execute(q.SCHEMA_MIGRATIONS)
                done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
                for version, sql in load_migrations("postgres"):
                    if version not in done:
                        async with conn.transaction():
                            await conn.execute(sql, timeout=q.UNHURRIED)
                            await conn.execute(q.RECORD_MIGRATION, version, time.time())
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", q.MIGRATION_LOCK)

    # --- LISTEN/NOTIFY -----------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def announce(self, topic: str) -> None:
        await self._execute(q.NOTIFY, topic)

    def _deliver(self, topic: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(topic)
            except Exception:  # one broken listener must not silence the others
                log.exception("listener failed on topic %r", topic)

    # --- jobs -------------------------------------------------------------------
    async def insert_and_claim(
        self,
        jobs: Sequence[NewJob],
        claims: Sequence[ClaimRequest],
        idempotency: IdempotencyRecord | None = None,
        workflow: WorkflowRecord | None = None,
    ) -> Inserted:

        async def insert(conn: Any) -> Inserted:
            stored = await self._insert(conn, jobs, idempotency, workflow)
            # Job rows first, the executor row (the claim's "seen") last, as everywhere.
            claimed = [await claim_in(conn, claim_args(request, None)) for request in claims]
            return Inserted(stored, claimed)

        # Retried: linking locks parents that may be ending, with their dependants' keys.
        inserted = await self._in_tx(insert)
        self._note_growth(len(jobs))
        return inserted

    async def _insert(
        self,
        conn: Any,
        jobs: Sequence[NewJob],
        idempotency: IdempotencyRecord | None,
        workflow: WorkflowRecord | None,
    ) -> list[Job]:
        if idempotency is not None:
            await q.insert_idempotency(conn, idempotency, jobs[0].id if jobs else None)
        if workflow is not None:
            await deps.insert_workflow_row(conn, workflow)
        if not jobs:
            return []
        columns = [list(c) for c in zip(*(new_job_params(j) for j in jobs), strict=True)]
        try:
            rows = await conn.fetch(q.INSERT_JOBS, *columns)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "jobs_dedupe":
                raise AlreadyExists("an identical task already exists", duplicate=True) from None
            raise AlreadyExists("job id already exists") from None
        await flow.lock_keys(conn, flow.keys_of(jobs))
        settled = await deps.link(conn, jobs, time.time())
        if held := await flow.admit_new(conn, jobs):
            reread = await conn.fetch(q.SELECT_JOBS, held)
            settled.update((r["id"], job_from_row(r)) for r in reread)
        # Wakes claimers on other replicas as soon as this commit lands.
        await conn.execute(q.NOTIFY, "jobs")
        seqs = {r["id"]: r["seq"] for r in rows}
        return [settled.get(job.id) or job.stored(seqs[job.id]) for job in jobs]

    def _note_growth(self, inserted: int) -> None:
        """Refresh the planner's statistics after a burst of inserts, in the background.

        With stale statistics PostgreSQL believes the queue is tiny and sorts it
        instead of walking ``jobs_queue`` in order, so a claim behind a bulk load
        of 100,000 jobs would cost tens of milliseconds until autovacuum woke up.
        """
        self._inserted_since_analyze += inserted
        busy = self._analyzer is not None and not self._analyzer.done()
        if self._inserted_since_analyze < ANALYZE_AFTER_INSERTS or busy:
            return
        self._inserted_since_analyze = 0
        self._analyzer = asyncio.get_running_loop().create_task(self._analyze())

    async def _analyze(self) -> None:
        try:
            await self._execute("ANALYZE jobs")
        except (Unavailable, asyncpg.PostgresError) as exc:
            log.warning("ANALYZE failed", extra={"action": "analyze_failed", "error": str(exc)})

    async def find_idempotency(self, principal_id: str, key: str) -> IdempotencyRecord | None:
        row = await self._fetchrow(q.FIND_IDEMPOTENCY, principal_id, key)
        if row is None:
            return None
        return IdempotencyRecord(principal_id, key, row[0], row[1], bytes(row[2]))

    async def get_job(self, job_id: str) -> Job | None:
        row = await self._fetchrow(q.SELECT_JOB, job_id)
        return job_from_row(row) if row else None

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job]:
        if not job_ids:
            return []
        rows = await self._fetch(q.SELECT_JOBS, list(job_ids))
        return [job_from_row(r) for r in rows]

    async def get_attempts(self, job_id: str) -> list[Attempt]:
        rows = await self._fetch(q.SELECT_ATTEMPTS, job_id)
        return [attempt_from_row(r) for r in rows]

    async def list_jobs(
        self, flt: JobFilter, limit: int, offset: int, newest_first: bool = True
    ) -> tuple[list[Job], int]:
        where, params = q.filter_sql(flt)
        order = "DESC" if newest_first else "ASC"
        n = len(params)
        async with self._conn() as conn:
            total = await conn.fetchval(f"SELECT count(*) FROM jobs {where}", *params)
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY seq {order} "
                f"LIMIT ${n + 1} OFFSET ${n + 2}",
                *params,
                limit,
                offset,
            )
        return [job_from_row(r) for r in rows], int(total)

    async def count_by_status(self) -> dict[JobStatus, int]:
        rows = await self._fetch("SELECT status, count(*) FROM jobs GROUP BY status")
        return status_counts(rows)

    async def pending_by_priority(self) -> dict[int, int]:
        rows = await self._fetch(
            "SELECT priority, count(*) FROM jobs WHERE status = 'pending' GROUP BY priority"
        )
        return {r[0]: r[1] for r in rows}


async def _keep_session(conn: Any) -> None:
    """Skip asyncpg's per-release reset query, one round trip per use of the pool.

    Pool connections never LISTEN (the listener has its own connection), never
    change settings, and the migrator releases its advisory lock itself, so the
    only state worth clearing is a transaction left open by an error.
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
