"""Issue 14's store rules, on SQLite and PostgreSQL: retry_on_failure, names, id prefixes,
searches by name and creation time, and output kept in arrival order across streams."""

from __future__ import annotations

import asyncio
import dataclasses

from corral.domain.jobs import JobSpec, NewJob, Outcome
from corral.domain.outcomes import Piece, interleave
from corral.domain.states import JobStatus
from corral.store.base import JobQuery, Store
from corral.store.rows import spec_from_json, spec_to_json
from tests.contract.contract_support import BACKOFF, NOW, POLICY, claim_request, new_job, ref


def _job(job_id: str, **spec: object) -> NewJob:
    base = new_job(job_id)
    return dataclasses.replace(base, spec=dataclasses.replace(base.spec, **spec))


async def test_item4_retry_on_failure_requeues_a_nonzero_exit_with_backoff(store: Store) -> None:
    await store.insert_jobs([_job("again", retry_on_failure=True), _job("once")])
    failed = Outcome(JobStatus.FAILED, exit_code=3, error_message="exited with code 3")
    for job_id in ("again", "once"):
        [claimed] = await store.claim(claim_request(), NOW)
        assert claimed.id == job_id
    requeued = await store.finish("again", ref(), failed, NOW, POLICY)
    assert (requeued.status, requeued.run_after) == (JobStatus.PENDING, NOW + BACKOFF)
    final = await store.finish("once", ref(), failed, NOW, POLICY)
    assert final.status == JobStatus.FAILED  # max_retries alone covers lost leases only
    stored = await store.get_job("again")
    assert stored is not None and stored.spec.retry_on_failure


async def test_item4_retry_on_failure_never_retries_a_job_that_did_not_run(
    store: Store,
) -> None:
    await store.insert_jobs([_job("again", retry_on_failure=True)])
    await store.claim(claim_request(), NOW)
    refused = Outcome(JobStatus.FAILED, error_message="missing input: data.csv")
    final = await store.finish("again", ref(), refused, NOW, POLICY)
    assert final.status == JobStatus.FAILED  # no exit code: only the worker's retry asks


async def test_item5_names_and_text_search_and_created_after(store: Store) -> None:
    await store.insert_jobs(
        [
            _job("a1", name="nightly build"),
            dataclasses.replace(_job("b2", command="make deploy"), created_at=NOW),
        ]
    )
    stored = await store.get_job("a1")
    assert stored is not None and stored.spec.name == "nightly build"
    by_name = await store.page_jobs(JobQuery(text="NIGHTLY"), 10)
    assert [j.id for j in by_name] == ["a1"]
    recent = await store.page_jobs(JobQuery(created_after=NOW - 1), 10)
    assert [j.id for j in recent] == ["b2"]


async def test_item1_id_prefix_finds_exactly_the_jobs_starting_with_it(store: Store) -> None:
    ids = ["3f2a9c1e-0000", "3f2a9c1e-1111", "3f2a9c1f-0000", "3f2a9c1d-0000", "a_b%-c"]
    await store.insert_jobs([new_job(i) for i in ids])

    async def found(prefix: str) -> list[str]:
        return sorted(j.id for j in await store.page_jobs(JobQuery(id_prefix=prefix), 10))

    assert await found("3f2a9c1e") == ["3f2a9c1e-0000", "3f2a9c1e-1111"]
    assert await found("3f2a9c1e-1") == ["3f2a9c1e-1111"]
    assert await found("3f2a9c1") == sorted(ids[:4])
    assert await found("a_b%") == ["a_b%-c"]  # wildcards taken literally
    assert await found("a%") == []
    assert await found("ffffffff") == []


async def test_item3_output_reads_back_in_arrival_order_across_streams(store: Store) -> None:
    await store.insert_jobs([new_job("j1", lease_seconds=30)])
    await store.claim(claim_request(), NOW)
    for stream, data in (("stdout", b"one\n"), ("stderr", b"two\n"), ("stdout", b"three\n")):
        await store.append_output("j1", ref(), stream, data)
        await asyncio.sleep(0.01)  # arrival times are the store's clock, in milliseconds
    job, pieces = await store.read_pieces("j1")
    assert job.attempt == 1
    ordered = interleave(pieces)
    assert b"".join(p.data for p in ordered) == b"one\ntwo\nthree\n"
    assert [p.stream for p in ordered] == ["stdout", "stderr", "stdout"]
    assert all(p.arrived_at > NOW for p in ordered)


def test_item3_interleave_keeps_each_stream_in_offset_order_whatever_the_clock() -> None:
    pieces = [
        Piece("stdout", 4, b"late\n", 5.0),
        Piece("stdout", 0, b"abc\n", 9.0),  # a replica's clock behind: still first
        Piece("stderr", 0, b"err\n", 6.0),
    ]
    merged = interleave(pieces)
    assert [p.data for p in merged] == [b"err\n", b"abc\n", b"late\n"]


def test_item4_spec_round_trips_name_and_retry_flag() -> None:
    spec = JobSpec(command="true", name="build", retry_on_failure=True)
    assert spec_from_json(spec_to_json(spec)) == spec
