"""TaskDriver's agent operations: next task, complete, fail, leases, peek, active agents.

``next-task`` answers ``data = {"task", "agentName", "id"}``. The ``id`` (the
task's, again) is not in the document's response example, but the document's
own Python and JavaScript clients call ``complete_task(task['id'], ...)`` on
exactly this ``data`` object; carrying the id at its top level makes those
clients work unchanged, and costs every other client nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.dialects.taskdriver.render import ok, task_view
from corral.api.responses import JSON
from corral.api.timefmt import iso

router = APIRouter(route_class=TaskDriverRoute, tags=["taskdriver"])

NO_TASK = "No tasks available for assignment"


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class NextTaskBody(_Camel):
    project_id: str = Field(min_length=1, max_length=200)


class CompleteBody(_Camel):
    agent_name: str | None = Field(default=None, min_length=1, max_length=100)
    result: Any = None
    outputs: dict[str, Any] = Field(default_factory=dict)


class FailBody(_Camel):
    agent_name: str | None = Field(default=None, min_length=1, max_length=100)
    error: str = Field(min_length=1, max_length=100_000)
    can_retry: bool = True


class ExtendBody(_Camel):
    agent_name: str | None = Field(default=None, min_length=1, max_length=100)
    extension_minutes: float = Field(ge=1, le=1440)


@router.post("/api/agents/{agentName}/next-task")
async def next_task(
    agentName: str,
    body: NextTaskBody,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    """Nothing to do is not an error: 200 with the document's ``success: false`` body."""
    job = await services.agents.next_task(principal, agentName, body.project_id)
    if job is None:
        data = {"task": None, "agentName": agentName}
        return JSON({"success": False, "error": NO_TASK, "data": data})
    return ok({"task": task_view(job), "agentName": agentName, "id": job.id})


@router.post("/api/tasks/{taskId}/complete")
async def complete_task(
    taskId: str,
    body: CompleteBody,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    job = await services.agents.complete(
        principal, taskId, body.agent_name, body.result, body.outputs
    )
    return ok(task_view(job))


@router.post("/api/tasks/{taskId}/fail")
async def fail_task(
    taskId: str,
    body: FailBody,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    job = await services.agents.fail(principal, taskId, body.agent_name, body.error, body.can_retry)
    return ok(task_view(job))


@router.post("/api/tasks/{taskId}/extend-lease")
async def extend_lease(
    taskId: str,
    body: ExtendBody,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    job = await services.agents.extend_lease(
        principal, taskId, body.agent_name, body.extension_minutes
    )
    return ok(
        {
            "taskId": job.id,
            "agentName": job.executor_id,
            "leaseExpiresAt": iso(job.lease_expires_at),
            "extensionMinutes": body.extension_minutes,
        }
    )


@router.post("/api/projects/{projectId}/cleanup-leases")
async def cleanup_leases(
    projectId: str,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    done = await services.agents.cleanup_leases(principal, projectId)
    return ok({"reclaimedTasks": done.reclaimed_tasks, "cleanedAgents": done.cleaned_agents})


@router.get("/api/projects/{projectId}/peek-next-task")
async def peek_next_task(
    projectId: str,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    available = await services.agents.peek(principal, projectId)
    return ok({"projectId": projectId, "tasksAvailable": available})


@router.get("/api/projects/{projectId}/agents")
async def active_agents(
    projectId: str,
    services: ServicesDep,
    principal: PrincipalDep,
) -> JSON:
    running = await services.agents.active_agents(principal, projectId)
    return ok(
        [
            {
                "agentName": job.executor_id,
                "taskId": job.id,
                "assignedAt": iso(job.started_at),
                "leaseExpiresAt": iso(job.lease_expires_at),
                "status": job.status.value,
            }
            for job in running
        ]
    )
