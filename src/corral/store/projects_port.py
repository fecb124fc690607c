"""TaskDriver's half of the storage port (``Store`` extends it): projects and task types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from corral.domain.jobs import Job, JobSpec
from corral.domain.projects import Project, TaskType
from corral.domain.states import JobStatus


@dataclass(frozen=True, slots=True)
class ProjectActivity:
    """A project's recent work, for TaskDriver's stats view."""

    active_agents: int  # distinct executors holding a lease on one of its tasks
    completed: int
    failed: int
    average_seconds: float | None  # mean run time of the completed ones; None: none


class ProjectStore(Protocol):
    """What the project and task services need of a store."""

    # --- TaskDriver: projects and task types ------------------------------------------
    async def create_project(self, project: Project) -> None:
        """Raises ``AlreadyExists`` when the name is taken."""

    async def get_project(self, project_id: str) -> Project | None: ...

    async def list_projects(
        self, status: str | None, limit: int, offset: int
    ) -> tuple[list[Project], int]:
        """Oldest first, and the total matching ``status`` (None: every status)."""

    async def update_project(self, project: Project) -> None:
        """Replace the mutable fields; ``NotFound`` or ``AlreadyExists`` (name taken)."""

    async def delete_project(self, project_id: str) -> None:
        """Delete the project and its task types; its tasks stay as history."""

    async def project_counts(self, project_ids: Sequence[str]) -> dict[str, dict[JobStatus, int]]:
        """Tasks per status for each project, in one query."""

    async def create_task_type(self, task_type: TaskType) -> None:
        """Raises ``AlreadyExists`` when the project already has a type of that name."""

    async def get_task_type(self, type_id: str) -> TaskType | None: ...

    async def list_task_types(self, project_id: str) -> list[TaskType]: ...

    async def update_task_type(self, task_type: TaskType) -> None: ...

    async def delete_task_type(self, type_id: str) -> None: ...

    async def find_duplicates(self, project_id: str, keys: Sequence[str]) -> dict[str, Job]:
        """The existing task for each dedupe key that has one."""

    async def update_pending_job(
        self, job_id: str, spec: JobSpec, dedupe_key: str | None = None
    ) -> Job:
        """Replace a pending job's spec (and its dedupe key); ``InvalidTransition`` once it
        has left the queue, ``AlreadyExists`` when the new key belongs to another task."""

    async def delete_job(self, job_id: str) -> None:
        """Delete a job that is not running, with all the purge deletes with it (its
        attempts, output, artifacts, idempotency record; ``prune_batch``); a job not
        finished yet is first cancelled, so that its dependants are decided."""

    async def project_activity(self, project_id: str, since: float) -> ProjectActivity:
        """Who runs the project's tasks now, and what finished after ``since``."""
