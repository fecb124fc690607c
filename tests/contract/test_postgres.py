"""What only the PostgreSQL adapter does: replicas sharing a database.

LISTEN/NOTIFY between store instances, reconnecting a lost LISTEN connection,
migrations racing at start-up, claims from two replicas, ``Unavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
from collections.abc import AsyncIterator

import asyncpg
import pytest

from corral.domain.jobs import Outcome
from corral.domain.principals import Principal, Role
from corral.domain.states import JobStatus
from corral.errors import Unavailable
from corral.services import output
from corral.services.events import Hub
from corral.services.output import OutputService
from corral.store.base import RESYNC
from corral.store.migration_files import load_migrations
from corral.store.postgres import listen as postgres_listen
from corral.store.postgres import sql as q
from corral.store.postgres.store import PostgresStore
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref
from tests.pg_server import PgServer

WAIT = 10.0  # generous upper bound; each wait ends as soon as the event arrives
READER = Principal(id="viewer-1", name="viewer", role=Role.VIEWER)


class Heard:
    """A listener that records topics and lets a test await a given one."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self._wanted: dict[str, asyncio.Event] = {}

    def __call__(self, topic: str) -> None:
        self.topics.append(topic)
        self._event(topic).set()

    def _event(self, topic: str) -> asyncio.Event:
        return self._wanted.setdefault(topic, asyncio.Event())

    async def wait_for(self, topic: str) -> None:
        await asyncio.wait_for(self._event(topic).wait(), WAIT)


@pytest.fixture
async def replicas(pg_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two dispatcher processes would have."""
    first, second = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_announce_reaches_a_listener_of_another_instance(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    heard = Heard()
    first.add_listener(heard)
    await second.announce("job:abc")
    await heard.wait_for("job:abc")
    assert "job:abc" in heard.topics


async def test_insert_jobs_wakes_other_replicas(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    heard = Heard()
    first.add_listener(heard)
    await second.insert_jobs([new_job("j1")])
    await heard.wait_for("jobs")
    assert [j.id for j in await first.claim(claim_request(), NOW)] == ["j1"]


async def test_a_broken_listener_does_not_silence_the_others(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas

    def broken(topic: str) -> None:
        raise RuntimeError("listener bug")

    heard = Heard()
    first.add_listener(broken)
    first.add_listener(heard)
    await second.announce("t")
    await heard.wait_for("t")


async def test_lost_listen_connection_is_reestablished(
    replicas: tuple[PostgresStore, PostgresStore], pg_dsn: str
) -> None:
    first, second = replicas
    heard = Heard()
    first.add_listener(heard)
    listen_pid = first._listening.conn.get_server_pid()
    admin = await asyncpg.connect(pg_dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", listen_pid)
    finally:
        await admin.close()
    # On reconnecting the store tells its listeners to look again (RESYNC), since
    # announcements made while it was away are lost.
    await heard.wait_for(RESYNC)
    assert first._listening.conn.get_server_pid() != listen_pid
    await second.announce("after-reconnect")
    await heard.wait_for("after-reconnect")


async def test_a_listen_connection_that_stops_answering_is_replaced(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A LISTEN connection can die without a word (the database's host rebooted, the
    network was cut): frozen here with SIGSTOP on its backend, it fails its ping and is
    replaced, and listeners are told to look again."""
    monkeypatch.setattr(postgres_listen, "PING_EVERY", 0.2)
    monkeypatch.setattr(postgres_listen, "PING_TIMEOUT", 0.5)
    first, second = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await first.open()
    await second.open()
    heard = Heard()
    first.add_listener(heard)
    frozen = first._listening.conn.get_server_pid()
    os.kill(frozen, signal.SIGSTOP)
    try:
        await heard.wait_for(RESYNC)
        assert first._listening.conn.get_server_pid() != frozen
        await second.announce("after-the-freeze")
        await heard.wait_for("after-the-freeze")
    finally:
        os.kill(frozen, signal.SIGCONT)
        await first.close()
        await second.close()


async def test_replicas_claiming_together_never_share_a_job(
    replicas: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = replicas
    await first.insert_jobs([new_job(f"j{i:03}") for i in range(150)])

    async def drain(store: PostgresStore, name: str) -> list[str]:
        got: list[str] = []
        while batch := await store.claim(claim_request(name, limit=3), NOW):
            got += [j.id for j in batch]
        return got

    results = await asyncio.gather(
        *(
            drain(store, f"{tag}-{n}")
            for n in range(4)
            for tag, store in (("a", first), ("b", second))
        )
    )
    claimed = [job_id for got in results for job_id in got]
    assert len(claimed) == len(set(claimed)) == 150


def _scanned_tables(plan: object) -> list[str]:
    """Relations the plan reads with a sequential scan, anywhere in its tree."""
    if isinstance(plan, list):
        return [t for item in plan for t in _scanned_tables(item)]
    if not isinstance(plan, dict):
        return []
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    return found + [t for value in plan.values() for t in _scanned_tables(value)]


async def test_a_claim_walks_the_queue_index_however_deep_the_queue(pg_dsn: str) -> None:
    """Planned for its own parameters (as the first claims of each connection are), the
    claim must not hash the whole pending queue to update the few rows it picked."""
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        for batch in range(2):
            await store.insert_jobs([new_job(f"j{batch}-{i:05}") for i in range(10_000)])
        async with store._conn() as conn:
            await conn.execute("ANALYZE jobs")
            args = (NOW, "[]", 0, None, 10, "exec-1", None, "worker-1")
            [plan] = await conn.fetchrow(f"EXPLAIN (FORMAT JSON) {q.CLAIM}", *args)  # not run
    finally:
        await store.close()
    assert "jobs" not in _scanned_tables(json.loads(plan))


async def test_admission_passes_over_a_held_job_being_cancelled(pg_dsn: str) -> None:
    """A slot frees while another transaction is cancelling the key's next held job:
    the admission neither waits for that transaction nor brings the cancelled job back;
    it admits the job after it."""
    store = PostgresStore(pg_dsn)
    await store.open()
    other = await asyncpg.connect(pg_dsn)
    try:
        key = {"concurrency_key": "deploy"}
        await store.insert_jobs([new_job(f"k{i}", **key) for i in range(3)])
        [running] = await store.claim(claim_request(), NOW)
        async with other.transaction():
            await other.execute("SELECT 1 FROM jobs WHERE id = 'k1' FOR UPDATE")
            done = Outcome(JobStatus.COMPLETED, exit_code=0)
            finishing = store.finish(running.id, ref(), done, NOW, POLICY)
            await asyncio.wait_for(finishing, WAIT)
            await other.execute(
                "UPDATE jobs SET status = 'cancelled', finished_at = $1 WHERE id = 'k1'", NOW
            )
        jobs = {j.id: j for j in await store.get_jobs(["k1", "k2"])}
        assert jobs["k1"].status is JobStatus.CANCELLED
        assert jobs["k2"].status is JobStatus.PENDING and not jobs["k2"].held
    finally:
        await other.close()
        await store.close()


async def test_concurrent_open_applies_migrations_once(pg_server: PgServer) -> None:
    dsn = await pg_server.new_database(migrated=False)
    stores = [PostgresStore(dsn, max_size=2) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        await stores[0].insert_jobs([new_job("j1")])
        assert await stores[3].get_job("j1") is not None
        conn = await asyncpg.connect(dsn)
        try:
            applied = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            assert applied == len(load_migrations("postgres"))
        finally:
            await conn.close()
    finally:
        for s in stores:
            await s.close()
        await pg_server.drop_database(dsn)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_unreachable_database_is_unavailable() -> None:
    store = PostgresStore(f"postgresql://corral@127.0.0.1:{_closed_port()}/corral")
    with pytest.raises(Unavailable):
        await store.open()
    with pytest.raises(Unavailable):
        await store.ping()


async def test_a_killed_pool_connection_surfaces_as_unavailable_then_heals(pg_dsn: str) -> None:
    store = PostgresStore(pg_dsn, min_size=1, max_size=1)
    await store.open()
    try:
        await store.ping()
        admin = await asyncpg.connect(pg_dsn)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'corral' AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        # The call that meets the dead connection may fail, but only as Unavailable...
        with contextlib.suppress(Unavailable):
            await store.ping()
        await store.ping()  # ...and the pool then replaces it
        await store.insert_jobs([new_job("j1")])
        assert await store.get_job("j1") is not None
    finally:
        await store.close()


async def test_a_follower_rides_out_the_database_going_away(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live follow has long sent its 200: while the database is away it keeps the stream
    open with keep-alives, and goes on with the job's output once it is back."""
    monkeypatch.setattr(output, "OUTAGE_RECHECK_SECONDS", 0.01)
    monkeypatch.setattr(output, "KEEPALIVE_SECONDS", 0.01)
    store = PostgresStore(pg_dsn)
    await store.open()
    try:
        await store.insert_jobs([new_job("j1")])
        await store.claim(claim_request(), NOW)
        follow = await OutputService(store, Hub()).follow(READER, "j1")
        assert (await anext(follow)).kind == "keepalive"
        await store.close()  # the database goes away under the stream
        assert [(await anext(follow)).kind for _ in range(3)] == ["keepalive"] * 3
        await store.open()
        await store.append_output("j1", ref(), "stdout", b"after the outage\n")
        await store.finish("j1", ref(), Outcome(JobStatus.COMPLETED, 0), None, POLICY)
        rest = [event async for event in follow if event.kind != "keepalive"]
        assert [(e.kind, e.data) for e in rest] == [
            ("output", b"after the outage\n"),
            ("end", b""),
        ]
    finally:
        await store.close()
