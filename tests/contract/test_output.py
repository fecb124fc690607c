"""Output streams: appends at the right offsets, reads by range, a cap with a truncated flag."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import asyncpg
import pytest

from corral.domain.jobs import Job, Outcome
from corral.domain.states import JobStatus
from corral.errors import InvalidInput, NotFound
from corral.store.base import Store
from corral.store.leases_port import Report
from corral.store.postgres.store import PostgresStore
from corral.store.sqlite.store import SqliteStore
from tests.contract.contract_support import BACKOFF, NOW, POLICY, claim_request, new_job, ref


async def _claim(store: Store) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30)])
    await store.claim(claim_request(), NOW)


async def test_append_then_read_by_offset(store: Store) -> None:
    await _claim(store)
    first = await store.append_output("j1", ref(), "stdout", b"hello ")
    assert (first.offset, first.size, first.truncated, first.attempt) == (0, 6, False, 1)
    second = await store.append_output("j1", ref(), "stdout", b"world")
    assert (second.offset, second.size) == (6, 11)
    await store.append_output("j1", ref(), "stderr", b"\x00\xfe raw")

    whole = await store.read_output("j1", "stdout", 0, 1000)
    assert (whole.data, whole.offset, whole.size, whole.truncated) == (
        b"hello world",
        0,
        11,
        False,
    )
    assert (await store.read_output("j1", "stdout", 3, 5)).data == b"lo wo"
    assert (await store.read_output("j1", "stdout", 6, 1000)).data == b"world"
    assert (await store.read_output("j1", "stdout", 11, 10)).data == b""
    assert (await store.read_output("j1", "stderr", 0, 100)).data == b"\x00\xfe raw"
    job = await store.get_job("j1")
    assert job is not None and job.stdout.size == 11 and job.stderr.size == 6


async def test_append_keeps_at_most_the_cap(store: Store) -> None:
    store.output_cap = 8  # type: ignore[attr-defined]
    await _claim(store)
    await store.append_output("j1", ref(), "stdout", b"hello ")
    cut = await store.append_output("j1", ref(), "stdout", b"world")
    assert (cut.size, cut.truncated) == (8, True)
    more = await store.append_output("j1", ref(), "stdout", b"!")
    assert (more.offset, more.size, more.truncated) == (8, 8, True)

    read = await store.read_output("j1", "stdout", 0, 100)
    assert (read.data, read.size, read.truncated) == (b"hello wo", 8, True)
    job = await store.get_job("j1")
    assert job is not None and job.stdout.truncated and not job.stderr.truncated


async def test_finish_output_is_capped_too(store: Store) -> None:
    store.output_cap = 4  # type: ignore[attr-defined]
    await _claim(store)
    done = await store.finish(
        "j1", ref(), Outcome(JobStatus.COMPLETED, 0, stdout="abcdef", stderr="xy"), NOW, POLICY
    )
    assert (done.stdout.size, done.stdout.truncated) == (4, True)
    assert (done.stderr.size, done.stderr.truncated) == (2, False)
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b"abcd"


async def test_a_new_attempt_starts_fresh_streams(store: Store) -> None:
    await _claim(store)
    await store.append_output("j1", ref(), "stdout", b"first try")
    await store.finish("j1", ref(), Outcome(JobStatus.FAILED, 1, retry=True), NOW, POLICY)
    [again] = await store.claim(claim_request(), NOW + BACKOFF)
    assert again.stdout.size == 0
    empty = await store.read_output("j1", "stdout", 0, 100)
    assert (empty.data, empty.size, empty.attempt) == (b"", 0, 2)
    await store.append_output("j1", ref(attempt=2), "stdout", b"second")
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b"second"


async def test_bad_stream_and_unknown_job(store: Store) -> None:
    await _claim(store)
    with pytest.raises(InvalidInput):
        await store.append_output("j1", ref(), "stdin", b"x")
    with pytest.raises(InvalidInput):
        await store.read_output("j1", "nope", 0, 10)
    with pytest.raises(NotFound):
        await store.read_output("ghost", "stdout", 0, 10)
    with pytest.raises(NotFound):
        await store.append_output("ghost", ref(), "stdout", b"x")
    job = await store.get_job("j1")
    assert job is not None and job.stdout.size == 0


async def _output_attempts(store: Store) -> list[int]:
    """Which attempts have output rows stored, read past the store's API (whose reads
    only ever see the current attempt)."""
    sql = "SELECT DISTINCT attempt FROM job_output WHERE job_id = 'j1' ORDER BY attempt"
    if isinstance(store, SqliteStore):
        with closing(sqlite3.connect(store.path)) as db:
            return [row[0] for row in db.execute(sql)]
    assert isinstance(store, PostgresStore)
    conn = await asyncpg.connect(store.dsn)
    try:
        return [row[0] for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def test_item22_a_retry_replaces_the_output_of_earlier_attempts(store: Store) -> None:
    """Every attempt used to keep its own capped output: a job retried 100 times held
    101 times the cap. Only the current attempt's output is ever read; now it is all
    that is kept once the new attempt prints, whether streamed or in its final report."""
    await _claim(store)
    await store.append_output("j1", ref(), "stdout", b"first try")
    await store.append_output("j1", ref(), "stderr", b"first err")
    await store.finish("j1", ref(), Outcome(JobStatus.FAILED, 1, retry=True), NOW, POLICY)
    await store.claim(claim_request(), NOW + BACKOFF)
    assert await _output_attempts(store) == [1]  # a silent retry erases nothing yet
    await store.append_output("j1", ref(attempt=2), "stderr", b"second")
    assert await _output_attempts(store) == [2]
    assert (await store.read_output("j1", "stderr", 0, 100)).data == b"second"

    await store.finish("j1", ref(attempt=2), Outcome(JobStatus.FAILED, 1, retry=True), NOW, POLICY)
    await store.claim(claim_request(), NOW + 10 * BACKOFF)
    report = Outcome(JobStatus.COMPLETED, 0, stdout="third")
    [done] = await store.finish_many([Report("j1", ref(attempt=3), report)], NOW, POLICY)
    assert isinstance(done, Job) and done.status == JobStatus.COMPLETED
    assert await _output_attempts(store) == [3]
    assert (await store.read_output("j1", "stdout", 0, 100)).data == b"third"
