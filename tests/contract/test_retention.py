"""Retention on both stores: a purge deletes exactly the finished jobs past their age,
with everything hanging off them, and nothing else.

Jobs end at chosen times (the store takes ``now`` as an argument) and the purge is
run at a later ``now``, so a month passes without waiting for it.
"""

from __future__ import annotations

from corral.domain.files import NewFile
from corral.domain.jobs import JobDraft, JobSpec, Outcome
from corral.domain.schedules import CatchUp, Overlap, Schedule
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorInfo
from corral.services.metrics import Metrics
from corral.services.retention import RetentionService
from corral.store.base import IdempotencyRecord, Store, WorkflowRecord
from tests.contract.contract_support import NOW, POLICY, claim_request, ref
from tests.contract.retention_support import DAY, count, ended, job, orphans, pieces

MONTH = 30 * DAY
LATER = NOW + 40 * DAY  # when the purge runs: jobs that ended at NOW are 40 days old
NO_ORPHANS = {
    "attempts": 0,
    "job_output": 0,
    "artifacts": 0,
    "file_chunks": 0,
    "idempotency_keys": 0,
    "job_deps": 0,
    "workflows": 0,
}


def service(store: Store, batch: int = 200, retention: float = MONTH) -> RetentionService:
    return RetentionService(store, Metrics(), retention, batch=batch, pace=False)


async def ids(store: Store, *wanted: str) -> set[str]:
    return {j.id for j in await store.get_jobs(list(wanted))}


async def finish(store: Store, job_id: str, at: float) -> None:
    (claimed,) = await store.claim(claim_request(), at)
    assert claimed.id == job_id
    await store.finish(job_id, ref(), Outcome(JobStatus.COMPLETED, exit_code=0), at, POLICY)


async def test_a_purge_deletes_exactly_the_finished_jobs_past_their_age(store: Store) -> None:
    await ended(store, job("old"), NOW, key="k-old", artifact=True)
    await ended(store, job("old-failed"), NOW, JobStatus.FAILED, artifact=True)
    await ended(store, job("old-cancelled"), NOW, JobStatus.CANCELLED)
    await ended(store, job("young"), NOW + 20 * DAY, key="k-young", artifact=True)
    await ended(store, job("keeps-long", retention_days=90), NOW)
    await ended(store, job("keeps-short", retention_days=1), LATER - 2 * DAY)
    await ended(store, job("keeps-forever", retention_days=0), NOW - 10 * DAY)
    await store.insert_jobs([job("running")])
    await store.claim(claim_request(), NOW)  # its lease ran out long ago; never reaped
    await store.insert_jobs([job("pending")])
    everyone = ["old", "old-failed", "old-cancelled", "young", "keeps-long", "keeps-short"]
    everyone += ["keeps-forever", "running", "pending"]

    report = await service(store).run_pass(LATER)

    kept = {"young", "keeps-long", "keeps-forever", "running", "pending"}
    assert await ids(store, *everyone) == kept
    assert report.pruned.jobs == 4
    assert report.pruned.attempts == 3  # the cancelled one never ran
    assert report.pruned.artifacts == 2
    assert report.pruned.file_chunks == 2  # 200 bytes each: one chunk
    assert report.pruned.idempotency_keys == 1
    assert report.pruned.output_chunks >= 3
    assert await orphans(store) == NO_ORPHANS
    # What the survivors own is all still there.
    assert await count(store, "files") == 1
    assert await count(store, "file_chunks") == 1
    assert [a.number for a in await store.get_attempts("young")] == [1]
    assert (await store.read_output("young", "stdout", 0, 100)).data == b"hello\n"
    assert await store.find_idempotency("alice", "k-young") is not None


async def test_a_pruned_jobs_idempotency_key_is_free_again(store: Store) -> None:
    await ended(store, job("first"), NOW, key="deploy-1")
    assert await store.find_idempotency("alice", "deploy-1") is not None

    await service(store).run_pass(LATER)

    assert await store.find_idempotency("alice", "deploy-1") is None
    record = IdempotencyRecord("alice", "deploy-1", "h-new", 201, b"{}")
    (again,) = await store.insert_jobs([job("second")], record)  # not AlreadyExists
    assert again.id == "second"
    assert await store.find_idempotency("alice", "deploy-1") == record


async def test_a_dry_run_counts_without_deleting(store: Store) -> None:
    for n in range(5):
        await ended(store, job(f"old-{n}"), NOW)
    await ended(store, job("young"), LATER - DAY)

    report = await service(store, batch=2).run_pass(LATER, dry_run=True)

    assert report.pruned.jobs == 5
    assert (await count(store, "jobs"), await count(store, "attempts")) == (6, 6)


async def test_small_batches_walk_past_held_jobs_to_the_end(store: Store) -> None:
    """Batches of 2 over 7 old jobs, 3 of them held by a dependant still waiting."""
    for n in range(7):
        await ended(store, job(f"old-{n}"), NOW + n)
    await store.insert_jobs([job(f"child-{n}", depends_on=(f"old-{n}",)) for n in (1, 3, 5)])

    report = await service(store, batch=2).run_pass(LATER)

    assert report.pruned.jobs == 4
    assert await ids(store, *(f"old-{n}" for n in range(7))) == {"old-1", "old-3", "old-5"}


async def test_the_age_override_and_the_keep_for_ever_default(store: Store) -> None:
    await ended(store, job("week-old"), LATER - 8 * DAY)
    await ended(store, job("asked-a-day", retention_days=1), LATER - 2 * DAY)
    forever = service(store, retention=0.0)

    kept = await forever.run_pass(LATER)  # the server keeps jobs for ever...
    assert kept.pruned.jobs == 1  # ...but a job's own retention still counts
    assert await ids(store, "week-old", "asked-a-day") == {"week-old"}

    by_hand = await forever.run_pass(LATER, older_than=7 * DAY)  # `prune --older-than 7d`
    assert by_hand.pruned.jobs == 1
    assert await ids(store, "week-old") == set()


async def test_a_dependant_keeps_its_parent_until_it_finishes(store: Store) -> None:
    await ended(store, job("parent"), NOW)
    await store.insert_jobs([job("child", depends_on=("parent",))])

    await service(store).run_pass(LATER)
    assert await ids(store, "parent", "child") == {"parent", "child"}

    await finish(store, "child", LATER)
    await service(store).run_pass(LATER + 1)
    assert await ids(store, "parent", "child") == {"child"}  # the child is young itself
    assert (await store.get_dependencies("child")).parents == ["parent"]  # its history
    assert await orphans(store) == NO_ORPHANS


async def test_a_workflow_goes_whole_once_every_job_is_past_its_age(store: Store) -> None:
    record = WorkflowRecord("wf-1", "release", "owner-1", NOW, {"a": "a", "b": "b", "c": "c"})
    graph = [job("a", workflow_id="wf-1"), job("b", workflow_id="wf-1", depends_on=("a",))]
    graph.append(job("c", workflow_id="wf-1", depends_on=("b",), retention_days=45))
    await store.insert_jobs(graph, workflow=record)
    await finish(store, "a", NOW)
    await finish(store, "b", NOW)

    await service(store).run_pass(LATER)  # c has not run: nothing of the graph goes
    assert await ids(store, "a", "b", "c") == {"a", "b", "c"}

    await finish(store, "c", NOW + 1)
    await service(store).run_pass(LATER)  # a and b are past 30 days, c not past its 45
    assert await ids(store, "a", "b", "c") == {"a", "b", "c"}
    assert await store.get_workflow("wf-1") is not None
    assert len(await store.workflow_edges("wf-1")) == 2

    report = await service(store, batch=1).run_pass(NOW + 46 * DAY)
    assert report.pruned.jobs == 3  # one workflow is never split between batches
    assert report.pruned.workflows == 1
    assert await store.get_workflow("wf-1") is None
    assert await orphans(store) == NO_ORPHANS


async def test_a_live_schedule_keeps_its_newest_run(store: Store) -> None:
    draft = JobDraft(spec=JobSpec(command="echo tick"), priority=0)
    schedule = Schedule(
        id="sch-1",
        name="nightly",
        owner_id="owner-1",
        cron="0 2 * * *",
        timezone="UTC",
        job=draft,
        overlap=Overlap.ALLOW,
        catch_up=CatchUp.NONE,
        jitter_seconds=0,
        paused=False,
        created_at=NOW,
        updated_at=NOW,
        last_tick=NOW,
        next_fire_at=None,
    )
    await store.create_schedule(schedule)
    for n in range(3):
        run = job(f"tick-{n}", schedule_id="sch-1", scheduled_for=NOW + n * DAY)
        await ended(store, run, NOW + n * DAY)

    await service(store).run_pass(LATER)  # all three are past 30 days

    assert [j.id for j in await store.schedule_jobs("sch-1", 10)] == ["tick-2"]
    await store.delete_schedule("sch-1")
    await service(store).run_pass(LATER)  # a deleted schedule keeps nothing
    assert await store.schedule_jobs("sch-1", 10) == []


async def test_executors_silent_for_a_week_are_forgotten(store: Store) -> None:
    def info(executor_id: str) -> ExecutorInfo:
        return ExecutorInfo(executor_id=executor_id, principal_id="worker-1")

    for name, seen in (("gone", LATER - 8 * DAY), ("resting", LATER - 6 * DAY)):
        await store.upsert_executor(info(name), seen, draining=False)
    await store.upsert_executor(info("exec-1"), LATER - 8 * DAY, draining=False)
    await store.insert_jobs([job("held")])
    await store.claim(claim_request("exec-1"), LATER - 8 * DAY)  # still running on it
    await store.touch_executor("exec-1", LATER - 8 * DAY)

    report = await service(store).run_pass(LATER)

    assert report.executors == 1
    assert sorted(e.info.executor_id for e in await store.list_executors()) == [
        "exec-1",
        "resting",
    ]


async def test_expired_uploads_go_in_the_same_pass(store: Store) -> None:
    for name, expires in (("stale", LATER - 1), ("fresh", LATER + DAY)):
        meta = NewFile(name, "owner-1", "in.zip", "application/zip", NOW, expires)
        await store.create_file(meta, pieces(b"zip"), 100)

    report = await service(store).run_pass(LATER)

    assert report.files == 1
    assert await store.get_file("stale") is None
    assert await store.get_file("fresh") is not None
    assert await orphans(store) == NO_ORPHANS


async def test_counters_say_what_was_pruned(store: Store) -> None:
    await ended(store, job("old"), NOW, key="k", artifact=True)
    metrics = Metrics()
    await RetentionService(store, metrics, MONTH, pace=False).run_pass(LATER)

    def pruned(kind: str) -> float | None:
        return metrics.registry.get_sample_value("corral_pruned_total", {"kind": kind})

    assert pruned("jobs") == 1
    assert pruned("attempts") == 1
    assert pruned("artifacts") == 1
    assert pruned("idempotency_keys") == 1


async def test_deleting_a_job_leaves_nothing_the_purge_would_have_taken(store: Store) -> None:
    """TaskDriver's delete of a finished and of a pending job: their artifacts (files
    and chunks), output and idempotency records go too, and the key is free again."""
    await ended(store, job("done"), NOW, key="k-done", artifact=True)
    await ended(store, job("other"), NOW, key="k-other", artifact=True)
    record = IdempotencyRecord("alice", "k-queued", "h-queued", 201, b"{}")
    await store.insert_jobs([job("queued")], record)

    await store.delete_job("done")
    await store.delete_job("queued")

    assert await ids(store, "done", "queued", "other") == {"other"}
    assert await orphans(store) == NO_ORPHANS
    assert await store.get_file("done-artifact") is None
    assert await store.find_idempotency("alice", "k-done") is None
    assert await store.find_idempotency("alice", "k-queued") is None
    # The other job keeps all it owns.
    assert (await count(store, "files"), await count(store, "file_chunks")) == (1, 1)
    assert await store.find_idempotency("alice", "k-other") is not None
    again = IdempotencyRecord("alice", "k-done", "h-new", 201, b"{}")
    (fresh,) = await store.insert_jobs([job("done-again")], again)  # not AlreadyExists
    assert fresh.id == "done-again"
