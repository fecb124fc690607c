"""TaskDriver's agents: named, ephemeral pullers of a project's tasks under leases.

An agent is a name, and the executor id of every lease it takes. Each lease
also belongs to a holder (``policy.lease_holder``): the worker or admin token
that took it, or, for an agent session, the credential its login presented. A
task is completed, failed or extended only under both: another name's report
is late (409, also when the reaper took the task back), and the same name
under another holder is someone else's (403), so knowing an agent's name, or a
corral worker's id, buys nothing. An agent that reconnects resumes the task it
holds only with a session earned with the same credential. A session acts only
as its own name in its own project; admins, agent tokens (in their project) and
unbound worker tokens may act for any name.

A completed task stores ``result = {"result": <text>, "outputs": <object>}``,
so both of the document's fields come back unchanged wherever the task is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.auth.policy import (
    Action,
    can,
    lease_holder,
    require,
    require_executor,
    require_project,
)
from corral.domain.jobs import AttemptRef, ClaimRequest, Job, Outcome
from corral.domain.principals import Principal
from corral.domain.projects import Project, ProjectStatus
from corral.domain.states import JobStatus
from corral.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotFound,
    StaleAttempt,
)
from corral.services.leasing import LeaseService
from corral.services.sessions import check_agent_name
from corral.store.base import JobFilter, Store

MAX_EXTENSION_MINUTES = 1440
REAP_BATCH = 500
RESUME_SCAN = 100  # running tasks of one name looked at for the caller's own lease
ACTIVE_LIMIT = 1000  # running tasks listed by ``active_agents``; more would be a report


@dataclass(frozen=True, slots=True)
class Cleanup:
    reclaimed_tasks: int
    cleaned_agents: int


class AgentService:
    def __init__(self, store: Store, leases: LeaseService) -> None:
        self._store = store
        self._leases = leases

    async def next_task(self, principal: Principal, agent_name: str, project_id: str) -> Job | None:
        """The task this agent already holds in the project, else a newly leased one."""
        require(principal, Action.EXECUTE)
        check_agent_name(agent_name)
        require_executor(principal, agent_name)
        require_project(principal, project_id)
        project = await self._project(project_id)
        if project.status != ProjectStatus.ACTIVE:
            raise Conflict("project is closed", project_id=project_id)
        held = await self._resume(principal, agent_name, project_id)
        if held is not None:
            return held
        request = ClaimRequest(
            executor_id=agent_name,
            principal_id=lease_holder(principal),
            project_id=project_id,
            limit=1,
        )
        claimed = await self._leases.claim(principal, request, wait=0.0)
        return claimed[0] if claimed else None

    async def _resume(self, principal: Principal, agent_name: str, project_id: str) -> Job | None:
        """Renew the lease this name holds for this holder, never shortening one the agent
        extended; a lease lost meanwhile (reaped, or finished elsewhere) just means there
        is nothing to resume. Another holder's lease under the same name is left alone."""
        flt = JobFilter(status=JobStatus.RUNNING, executor_id=agent_name, project_id=project_id)
        running, _ = await self._store.list_jobs(flt, RESUME_SCAN, 0, newest_first=False)
        holder = lease_holder(principal)
        mine = [job for job in running if job.lease_principal_id == holder]
        if not mine:
            return None
        job = mine[0]
        remaining = (job.lease_expires_at or 0.0) - await self._store.clock()
        ref = AttemptRef(executor_id=agent_name, attempt=job.attempt, principal_id=holder)
        try:
            return await self._leases.heartbeat(job.id, ref, max(job.lease_seconds, remaining))
        except (StaleAttempt, InvalidTransition, NotFound):
            return None

    async def complete(
        self,
        principal: Principal,
        task_id: str,
        agent_name: str | None,
        result: Any,
        outputs: dict[str, Any],
    ) -> Job:
        ref = await self._fence(principal, task_id, agent_name)
        outcome = Outcome(JobStatus.COMPLETED, result={"result": result, "outputs": outputs})
        return await self._leases.finish(task_id, ref, outcome)

    async def fail(
        self,
        principal: Principal,
        task_id: str,
        agent_name: str | None,
        error: str,
        can_retry: bool,
    ) -> Job:
        """Requeued (with the usual backoff) when ``can_retry`` and retries remain, else failed."""
        ref = await self._fence(principal, task_id, agent_name)
        outcome = Outcome(JobStatus.FAILED, error_message=error, retry=can_retry)
        return await self._leases.finish(task_id, ref, outcome)

    async def extend_lease(
        self, principal: Principal, task_id: str, agent_name: str | None, minutes: float
    ) -> Job:
        """The lease then ends ``minutes`` from now, or later if it already did."""
        if not 1 <= minutes <= MAX_EXTENSION_MINUTES:
            raise InvalidInput(
                f"extensionMinutes must be between 1 and {MAX_EXTENSION_MINUTES}",
                field="extensionMinutes",
                value=minutes,
            )
        ref = await self._fence(principal, task_id, agent_name)
        job = await self._task(task_id)
        remaining = (job.lease_expires_at or 0.0) - await self._store.clock()
        return await self._leases.heartbeat(task_id, ref, max(minutes * 60.0, remaining))

    async def cleanup_leases(self, principal: Principal, project_id: str) -> Cleanup:
        """Reap every expired lease now (all projects: one pass of the reaper), and count
        what it took back from this project and from how many of its agents."""
        require(principal, Action.EXECUTE)
        require_project(principal, project_id)
        await self._project(project_id)
        reaped: list[Job] = []
        while True:
            batch = await self._leases.reap(REAP_BATCH)
            reaped += [job for job in batch if job.project_id == project_id]
            if len(batch) < REAP_BATCH:
                break
        agents = {job.executor_id for job in reaped if job.executor_id}
        return Cleanup(reclaimed_tasks=len(reaped), cleaned_agents=len(agents))

    async def peek(self, principal: Principal, project_id: str) -> int:
        """Pending tasks, those still waiting out a retry backoff included."""
        _require_read_or_execute(principal)
        require_project(principal, project_id)
        await self._project(project_id)
        flt = JobFilter(status=JobStatus.PENDING, project_id=project_id)
        _, total = await self._store.list_jobs(flt, 0, 0)
        return total

    async def active_agents(self, principal: Principal, project_id: str) -> list[Job]:
        """The project's running tasks, oldest lease first: one row per agent and task."""
        _require_read_or_execute(principal)
        require_project(principal, project_id)
        await self._project(project_id)
        flt = JobFilter(status=JobStatus.RUNNING, project_id=project_id)
        running, _ = await self._store.list_jobs(flt, ACTIVE_LIMIT, 0, newest_first=False)
        return running

    async def _fence(
        self, principal: Principal, task_id: str, agent_name: str | None
    ) -> AttemptRef:
        """The agent name and the lease holder are the fence (no attempt number): whatever
        attempt that name holds now for this holder is the one it reports on."""
        require(principal, Action.EXECUTE)
        name = agent_name or principal.executor_id
        if name is None:
            raise InvalidInput("agentName is required", field="agentName")
        check_agent_name(name)
        require_executor(principal, name)
        job = await self._task(task_id)
        require_project(principal, job.project_id)
        return AttemptRef(executor_id=name, attempt=None, principal_id=lease_holder(principal))

    async def _task(self, task_id: str) -> Job:
        """Only TaskDriver's tasks (jobs in a project) are visible here."""
        job = await self._store.get_job(task_id)
        if job is None or job.project_id is None:
            raise NotFound("Task not found", task_id=task_id)
        return job

    async def _project(self, project_id: str) -> Project:
        project = await self._store.get_project(project_id)
        if project is None:
            raise NotFound("Project not found", project_id=project_id)
        return project


def _require_read_or_execute(principal: Principal) -> None:
    """Viewers may look at a project's queue, and so may the agents working it."""
    if not (can(principal, Action.READ) or can(principal, Action.EXECUTE)):
        raise Forbidden(f"role {principal.role} may not read this project", action="read")
