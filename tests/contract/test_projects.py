"""TaskDriver's projects, task types and task edits, on both stores."""

from __future__ import annotations

import dataclasses

import pytest

from corral.domain.jobs import JobSpec, NewJob, Outcome
from corral.domain.projects import (
    DuplicateHandling,
    Project,
    ProjectConfig,
    ProjectStatus,
    TaskType,
)
from corral.domain.states import JobStatus
from corral.errors import AlreadyExists, InvalidTransition, NotFound
from corral.store.base import JobFilter, Store
from tests.contract.contract_support import NOW, POLICY, claim_request, new_job, ref


def project(project_id: str = "p-1", name: str = "alpha", created_at: float = NOW) -> Project:
    return Project(
        id=project_id,
        name=name,
        created_at=created_at,
        updated_at=created_at,
        description="d",
        instructions="i",
        config=ProjectConfig(default_max_retries=5, default_lease_minutes=2.5),
    )


def task_type(type_id: str = "t-1", project_id: str = "p-1", name: str = "scan") -> TaskType:
    return TaskType(
        id=type_id,
        project_id=project_id,
        name=name,
        created_at=NOW,
        updated_at=NOW,
        template="Scan {{repo}}",
        variables=("repo",),
        duplicate_handling=DuplicateHandling.IGNORE,
        max_retries=2,
        lease_minutes=None,
    )


def task(job_id: str, *, key: str | None = None, project_id: str = "p-1") -> NewJob:
    job = new_job(job_id, project_id=project_id, command=None, instructions="do it")
    return dataclasses.replace(job, task_type_id="t-1", dedupe_key=key)


async def test_projects_round_trip_with_every_field(store: Store) -> None:
    assert await store.get_project("p-1") is None
    await store.create_project(project())
    assert await store.get_project("p-1") == project()
    changed = dataclasses.replace(
        project(),
        name="beta",
        description="d2",
        instructions="i2",
        status=ProjectStatus.CLOSED,
        config=ProjectConfig(1, 3.0, 4.0),
        agent_login=False,
        updated_at=NOW + 5,
    )
    await store.update_project(changed)
    assert await store.get_project("p-1") == changed


async def test_project_names_are_unique(store: Store) -> None:
    await store.create_project(project())
    with pytest.raises(AlreadyExists):
        await store.create_project(project("p-2"))
    await store.create_project(project("p-2", "beta"))
    with pytest.raises(AlreadyExists):
        await store.update_project(dataclasses.replace(project("p-2", "alpha")))
    with pytest.raises(NotFound):
        await store.update_project(project("p-9", "gamma"))


async def test_list_projects_filters_and_pages_oldest_first(store: Store) -> None:
    for i in range(5):
        await store.create_project(project(f"p-{i}", f"n{i}", NOW + i))
    closed = dataclasses.replace(project("p-1", "n1", NOW + 1), status=ProjectStatus.CLOSED)
    await store.update_project(closed)
    page, total = await store.list_projects(None, 2, 1)
    assert [p.id for p in page] == ["p-1", "p-2"] and total == 5
    active, total = await store.list_projects("active", 10, 0)
    assert [p.id for p in active] == ["p-0", "p-2", "p-3", "p-4"] and total == 4
    only, total = await store.list_projects("closed", 10, 0)
    assert [p.id for p in only] == ["p-1"] and total == 1


async def test_delete_project_takes_its_task_types_and_leaves_tasks(store: Store) -> None:
    await store.create_project(project())
    await store.create_task_type(task_type())
    await store.insert_jobs([task("j-1")])
    await store.delete_project("p-1")
    assert await store.get_project("p-1") is None
    assert await store.get_task_type("t-1") is None
    assert await store.get_job("j-1") is not None
    with pytest.raises(NotFound):
        await store.delete_project("p-1")


async def test_task_types_round_trip_unique_per_project(store: Store) -> None:
    await store.create_task_type(task_type())
    assert await store.get_task_type("t-1") == task_type()
    with pytest.raises(AlreadyExists):
        await store.create_task_type(task_type("t-2"))
    await store.create_task_type(task_type("t-3", project_id="p-2"))  # another project: fine
    await store.create_task_type(task_type("t-4", name="other"))
    assert [t.id for t in await store.list_task_types("p-1")] == ["t-1", "t-4"]
    changed = dataclasses.replace(
        task_type(),
        name="renamed",
        template="x",
        variables=(),
        duplicate_handling=DuplicateHandling.FAIL,
        max_retries=None,
        lease_minutes=7.5,
        updated_at=NOW + 1,
    )
    await store.update_task_type(changed)
    assert await store.get_task_type("t-1") == changed
    with pytest.raises(AlreadyExists):
        await store.update_task_type(dataclasses.replace(changed, name="other"))
    with pytest.raises(NotFound):
        await store.update_task_type(task_type("t-9", name="zzz"))
    await store.delete_task_type("t-1")
    assert await store.get_task_type("t-1") is None
    with pytest.raises(NotFound):
        await store.delete_task_type("t-1")


async def test_dedupe_key_is_unique_per_project(store: Store) -> None:
    await store.insert_jobs([task("j-1", key="k1"), task("j-2"), task("j-3")])
    with pytest.raises(AlreadyExists) as caught:
        await store.insert_jobs([task("j-4", key="k2"), task("j-5", key="k1")])
    assert caught.value.context.get("duplicate") is True
    assert await store.get_job("j-4") is None  # all or nothing
    await store.insert_jobs([task("j-6", key="k1", project_id="p-2")])
    found = await store.find_duplicates("p-1", ["k1", "k2", "k1"])
    assert list(found) == ["k1"] and found["k1"].id == "j-1"
    assert await store.find_duplicates("p-1", []) == {}
    with pytest.raises(AlreadyExists) as again:
        await store.insert_jobs([new_job("j-1")])
    assert "duplicate" not in again.value.context


async def test_list_jobs_by_task_type(store: Store) -> None:
    other = dataclasses.replace(new_job("j-2", project_id="p-1"), task_type_id="t-2")
    await store.insert_jobs([task("j-1"), other, task("j-3")])
    jobs, total = await store.list_jobs(JobFilter(task_type_id="t-1"), 10, 0, False)
    assert [j.id for j in jobs] == ["j-1", "j-3"] and total == 2


async def test_update_pending_job_replaces_spec_and_runnable(store: Store) -> None:
    await store.insert_jobs([task("j-1", key="k1"), task("j-2", key="k2")])
    assert await store.claim(claim_request(runnable_only=True), NOW) == []
    spec = JobSpec(command="echo now", instructions="new", variables={"a": 1}, labels=("gpu",))
    updated = await store.update_pending_job("j-1", spec, "k3")
    assert updated.spec == spec
    stored = await store.get_job("j-1")
    assert stored is not None and stored.spec == spec
    assert await store.find_duplicates("p-1", ["k1", "k3"]) == {"k3": stored}
    # Now it has a command, workers with the label may run it.
    claimed = await store.claim(claim_request(runnable_only=True, labels=frozenset({"gpu"})), NOW)
    assert [j.id for j in claimed] == ["j-1"]
    with pytest.raises(InvalidTransition):
        await store.update_pending_job("j-1", spec)
    with pytest.raises(AlreadyExists):
        await store.update_pending_job("j-2", spec, "k3")
    with pytest.raises(NotFound):
        await store.update_pending_job("nope", spec)


async def test_delete_job_refuses_running_and_removes_history(store: Store) -> None:
    await store.insert_jobs([new_job("j-1"), new_job("j-2")])
    (job,) = await store.claim(claim_request(), NOW)
    await store.append_output(job.id, ref(), "stdout", b"hello")
    with pytest.raises(InvalidTransition):
        await store.delete_job(job.id)
    await store.finish(job.id, ref(), Outcome(JobStatus.COMPLETED, exit_code=0), NOW, POLICY)
    await store.delete_job(job.id)
    assert await store.get_job(job.id) is None
    assert await store.get_attempts(job.id) == []
    await store.delete_job("j-2")  # pending: fine
    with pytest.raises(NotFound):
        await store.delete_job("j-2")
    await store.insert_jobs([new_job("j-1")])  # the id is free again, no stale rows remain
    assert (await store.read_output("j-1", "stdout", 0, 100)).data == b""


async def test_project_counts_and_activity(store: Store) -> None:
    await store.insert_jobs([task(f"j-{i}") for i in range(4)])
    await store.insert_jobs([task("j-x", project_id="p-2")])
    runnable = [new_job(f"r-{i}", project_id="p-1") for i in range(3)]
    await store.insert_jobs(runnable)
    a = await store.claim(claim_request("exec-a"), NOW)
    b = await store.claim(claim_request("exec-b", limit=2), NOW)
    assert len(a) == 1 and len(b) == 2
    done = Outcome(JobStatus.COMPLETED, exit_code=0)
    await store.finish(b[0].id, ref("exec-b"), done, NOW + 4, POLICY)
    failed = Outcome(JobStatus.FAILED, exit_code=1)
    await store.finish(b[1].id, ref("exec-b"), failed, NOW + 6, POLICY)  # final: no retry asked
    counts = await store.project_counts(["p-1", "p-2", "p-3"])
    assert counts["p-2"] == {JobStatus.PENDING: 1}
    assert counts["p-3"] == {}
    assert sum(counts["p-1"].values()) == 7
    assert counts["p-1"][JobStatus.RUNNING] == 1
    assert counts["p-1"][JobStatus.COMPLETED] == 1
    activity = await store.project_activity("p-1", NOW - 1)
    assert activity.active_agents == 1 and activity.completed == 1
    assert activity.failed == 1
    assert activity.average_seconds == pytest.approx(4.0)
    later = await store.project_activity("p-1", NOW + 100)
    assert (later.completed, later.failed, later.average_seconds) == (0, 0, None)
    assert await store.project_counts([]) == {}
