"""Submitting and reading jobs: round trips, atomic batches, idempotency, listings."""

from __future__ import annotations

import pytest

from corral.domain.jobs import JobSpec, NewJob, Outcome
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, InvalidTransition
from corral.store.base import IdempotencyRecord, JobFilter, Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref

FULL_SPEC = JobSpec(
    type="render",
    command="./render --frame $FRAME",
    arguments=("--fast", "a b", "ünïcode"),
    env={"FRAME": "12", "EMPTY": ""},
    working_directory="/srv/work",
    input_file_id="file-123",
    inputs=("in/a.png", "in/b.png"),
    outputs=("out/*.exr",),
    timeout=1234,
    labels=("gpu", "linux"),
    instructions="render the frame, then upload",
    variables={"scene": "intro", "frames": [1, 2, 3], "nested": {"x": None}},
)
BINARY_SPEC = JobSpec(
    type="binary",
    binary_url="https://example.com/tool",
    binary_sha256="ab" * 32,
    arguments=("-v",),
)


async def test_insert_then_get_round_trips_every_field(store: Store) -> None:
    full = NewJob(
        id="job-full",
        spec=FULL_SPEC,
        priority=7,
        owner_id="owner-9",
        created_at=NOW - 5.25,
        max_retries=5,
        lease_seconds=42.5,
        project_id="proj",
        batch_id="batch",
        task_type_id="tt-1",
    )
    binary = NewJob(id="job-bin", spec=BINARY_SPEC, priority=-3, owner_id="o", created_at=NOW)
    agent = NewJob(
        id="job-agent",
        spec=JobSpec(type="agent", instructions="think"),
        priority=0,
        owner_id="o",
        created_at=NOW,
    )
    inserted = await store.insert_jobs([full, binary, agent])

    assert [j.id for j in inserted] == ["job-full", "job-bin", "job-agent"]
    assert inserted[0].seq < inserted[1].seq < inserted[2].seq
    for new, returned in zip([full, binary, agent], inserted, strict=True):
        assert returned == new.stored(returned.seq)
        assert await store.get_job(new.id) == returned
    got = await store.get_job("job-full")
    assert got is not None
    assert got.spec == FULL_SPEC
    assert got.status == JobStatus.PENDING and got.attempt == 0 and got.run_after == 0
    assert got.stdout.size == 0 and not got.cancel_requested
    assert {j.id for j in await store.get_jobs(["job-bin", "job-agent", "nope"])} == {
        "job-bin",
        "job-agent",
    }
    assert await store.get_jobs([]) == []
    assert await store.get_job("nope") is None
    assert await store.get_attempts("job-full") == []


async def test_bulk_insert_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(AlreadyExists):
        await store.insert_jobs([new_job("a"), new_job("b"), new_job("a")])
    assert await store.get_job("a") is None
    assert await store.get_job("b") is None
    assert await store.count_by_status() == {}

    await store.insert_jobs([new_job("x")])
    with pytest.raises(AlreadyExists):
        await store.insert_jobs([new_job("y"), new_job("x")])
    assert await store.get_job("y") is None
    assert (await store.list_jobs(JobFilter(), 10, 0))[1] == 1


async def test_insert_empty_batch(store: Store) -> None:
    assert await store.insert_jobs([]) == []


def _record(key: str, principal: str = "alice", body: bytes = b'{"id": "j1"}') -> IdempotencyRecord:
    return IdempotencyRecord(principal, key, "hash-1", 201, body)


async def test_idempotency_record_is_kept_with_the_jobs(store: Store) -> None:
    record = _record("key-1", body=b"\x00\xffbinary body")
    await store.insert_jobs([new_job("j1")], record)
    assert await store.find_idempotency("alice", "key-1") == record
    assert await store.find_idempotency("alice", "key-2") is None
    assert await store.find_idempotency("bob", "key-1") is None

    with pytest.raises(AlreadyExists):
        await store.insert_jobs([new_job("j2")], _record("key-1", body=b"other"))
    assert await store.get_job("j2") is None
    assert await store.find_idempotency("alice", "key-1") == record

    # Keys are per principal.
    await store.insert_jobs([new_job("j3")], _record("key-1", principal="bob"))
    assert await store.get_job("j3") is not None


async def test_failed_batch_keeps_no_idempotency_record(store: Store) -> None:
    with pytest.raises(AlreadyExists):
        await store.insert_jobs([new_job("a"), new_job("a")], _record("key-9"))
    assert await store.find_idempotency("alice", "key-9") is None


async def test_list_jobs_filters_pages_and_counts(store: Store) -> None:
    await store.insert_jobs(
        [
            new_job("j1", owner_id="ann", project_id="p1", batch_id="b1", priority=1),
            new_job("j2", owner_id="ann", project_id="p2", type="build", priority=2),
            new_job("j3", owner_id="bob", project_id="p1", batch_id="b1", priority=1),
            new_job("j4", owner_id="bob", type="build", priority=3),
            new_job("j5", owner_id="ann", project_id="p1", priority=1),
        ]
    )
    [claimed] = await store.claim(claim_request("exec-9", limit=1), NOW)
    assert claimed.id == "j4"

    jobs, total = await store.list_jobs(JobFilter(), 10, 0)
    assert [j.id for j in jobs] == ["j5", "j4", "j3", "j2", "j1"]  # newest first
    assert total == 5
    jobs, total = await store.list_jobs(JobFilter(), 2, 1)
    assert [j.id for j in jobs] == ["j4", "j3"] and total == 5
    jobs, total = await store.list_jobs(JobFilter(), 10, 50)
    assert jobs == [] and total == 5

    async def ids(flt: JobFilter) -> tuple[list[str], int]:
        found, count = await store.list_jobs(flt, 100, 0)
        return [j.id for j in found], count

    assert await ids(JobFilter(owner_id="ann")) == (["j5", "j2", "j1"], 3)
    assert await ids(JobFilter(project_id="p1")) == (["j5", "j3", "j1"], 3)
    assert await ids(JobFilter(project_id="p1", owner_id="bob")) == (["j3"], 1)
    assert await ids(JobFilter(batch_id="b1")) == (["j3", "j1"], 2)
    assert await ids(JobFilter(type="build")) == (["j4", "j2"], 2)
    assert await ids(JobFilter(priority=1)) == (["j5", "j3", "j1"], 3)
    assert await ids(JobFilter(status=JobStatus.RUNNING)) == (["j4"], 1)
    assert await ids(JobFilter(executor_id="exec-9")) == (["j4"], 1)
    assert await ids(JobFilter(status=JobStatus.COMPLETED)) == ([], 0)


async def test_count_by_status_and_pending_by_priority(store: Store) -> None:
    assert await store.count_by_status() == {}
    assert await store.pending_by_priority() == {}
    await store.insert_jobs(
        [new_job(f"j{i}", priority=p) for i, p in enumerate([5, 5, 5, 1, 1, 0, -2])]
    )
    running = await store.claim(claim_request(limit=2), NOW)
    assert [j.priority for j in running] == [5, 5]
    await store.finish(running[0].id, ref(), Outcome(JobStatus.COMPLETED, 0), NOW, POLICY)
    await store.cancel("j6", NOW)

    assert await store.count_by_status() == {
        JobStatus.PENDING: 4,
        JobStatus.RUNNING: 1,
        JobStatus.COMPLETED: 1,
        JobStatus.CANCELLED: 1,
    }
    assert await store.pending_by_priority() == {5: 1, 1: 2, 0: 1}


async def test_pending_only_cancel_refuses_a_started_job_in_one_step(store: Store) -> None:
    await store.insert_jobs([new_job("a"), new_job("b")])
    [claimed] = await store.claim(claim_request(), NOW)
    with pytest.raises(InvalidTransition):
        await store.cancel(claimed.id, NOW, pending_only=True)
    still = await store.get_job(claimed.id)
    assert still is not None and not still.cancel_requested
    other = "b" if claimed.id == "a" else "a"
    assert (await store.cancel(other, NOW, pending_only=True)).status == JobStatus.CANCELLED
