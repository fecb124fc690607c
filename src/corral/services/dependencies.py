"""Who may wait for which job, and what a job's dependencies look like to a reader.

A job may depend only on jobs its submitter may see: an id it may not see is
answered exactly like an id that does not exist, so depending on a job reveals
nothing about jobs outside the caller's view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.auth.policy import Action, can, lease_holder
from corral.domain.dependencies import check_depends_on
from corral.domain.jobs import Job, NewJob
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.errors import Forbidden, InvalidInput, NotFound
from corral.store.base import Store


def may_see(principal: Principal, job: Job) -> bool:
    """Readers see every job, except that a principal bound to a project sees its own."""
    if not can(principal, Action.READ):
        return False
    return principal.project_id is None or principal.project_id == job.project_id


async def check_parents(store: Store, principal: Principal, new_jobs: Sequence[NewJob]) -> None:
    """Every ``depends_on`` id names a job of this request or one the caller may see;
    ``InvalidInput`` (a 400) naming the first ids that do not."""
    waiting = [job for job in new_jobs if job.depends_on]  # most submits: none
    if not waiting:
        return
    fresh = {j.id for j in new_jobs}
    wanted: set[str] = set()
    for job in waiting:
        check_depends_on(job.depends_on)
        if job.id in job.depends_on:
            raise InvalidInput("a job cannot depend on itself", field="depends_on")
        wanted.update(p for p in job.depends_on if p not in fresh)
    if not wanted:
        return
    found = await store.get_jobs(sorted(wanted))
    visible = {j.id for j in found if may_see(principal, j)}
    unknown = sorted(wanted - visible)
    if unknown:
        raise InvalidInput(
            "depends_on names unknown jobs: " + ", ".join(unknown[:10]),
            field="depends_on",
            unknown=unknown[:100],
        )


@dataclass(frozen=True, slots=True)
class DependencyView:
    """A job's dependencies as stored now (with their results) and its dependants."""

    job: Job
    parents: list[Job]
    children: list[Job]


async def dependency_view(store: Store, principal: Principal, job_id: str) -> DependencyView:
    """For readers, and for the worker or agent holding the job's lease: a dependant
    running on a worker reads its parents' ``result`` with the worker's credentials."""
    job = await store.get_job(job_id)
    if job is None:
        raise NotFound("job not found", job_id=job_id)
    holds = job.status is JobStatus.RUNNING and job.lease_principal_id == lease_holder(principal)
    if not (holds or may_see(principal, job)):
        raise Forbidden("only readers and the job's lease holder read its dependencies")
    deps = await store.get_dependencies(job_id)
    parents = await store.get_jobs(deps.parents)
    children = await store.get_jobs(deps.children)
    return DependencyView(job, parents, children)
