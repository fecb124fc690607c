"""Issue 18, on both stores: what the MCP tools add to the services. A project is found
by id or by name (past the first page of projects), a task type by name within its
project, and a job waited for until it finishes or the time is up."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from corral.domain.jobs import JobDraft, JobSpec
from corral.domain.principals import Principal, Role
from corral.domain.priority import NORMAL
from corral.domain.projects import Project, TaskType
from corral.domain.states import JobStatus
from corral.errors import NotFound
from corral.services.container import Services
from corral.services.projects import NAME_SCAN
from corral.settings import ServerSettings
from corral.store.base import Store

ADMIN = Principal(id="admin", name="admin", role=Role.ADMIN)


def _services(store: Store, tmp_path: Path) -> Services:
    return Services(store, ServerSettings(data_dir=tmp_path))


async def _project(store: Store, name: str) -> Project:
    now = time.time()
    project = Project(id=str(uuid.uuid4()), name=name, created_at=now, updated_at=now)
    await store.create_project(project)
    return project


async def test_item18_projects_are_found_by_id_or_by_name(store: Store, tmp_path: Path) -> None:
    services = _services(store, tmp_path)
    for index in range(NAME_SCAN):
        await _project(store, f"filler-{index:04d}")
    last = await _project(store, "the-last-one")  # on the second page of the scan
    assert await services.projects.project_id_of(last.id) == last.id
    assert await services.projects.project_id_of("the-last-one") == last.id
    with pytest.raises(NotFound):
        await services.projects.project_id_of("nobody")
    now = time.time()
    task_type = TaskType(
        id=str(uuid.uuid4()), project_id=last.id, name="greet", created_at=now, updated_at=now
    )
    await store.create_task_type(task_type)
    assert await services.projects.type_id_of(last.id, "greet") == task_type.id
    assert await services.projects.type_id_of(last.id, task_type.id) == task_type.id


async def test_item18_waiting_for_a_job_ends_when_it_finishes_or_time_is_up(
    store: Store, tmp_path: Path
) -> None:
    services = _services(store, tmp_path)
    draft = JobDraft(spec=JobSpec(type="shell", command="true"), priority=NORMAL)
    job = (await services.jobs.submit(ADMIN, [draft])).jobs[0]
    still = await services.output.wait(ADMIN, job.id, 0.1)
    assert still.status is JobStatus.PENDING

    async def cancel_soon() -> None:
        await asyncio.sleep(0.2)
        await services.jobs.cancel(ADMIN, job.id)

    canceller = asyncio.create_task(cancel_soon())
    done = await services.output.wait(ADMIN, job.id, 30)
    await canceller
    assert done.status is JobStatus.CANCELLED
    with pytest.raises(NotFound):
        await services.output.wait(ADMIN, "no-such-job", 0)
