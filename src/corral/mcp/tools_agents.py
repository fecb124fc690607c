"""TaskDriver's agent tools: pull a task under a lease, complete, fail or extend it,
and watch a project's queue, agents and leases.

``agentName`` may be left out: the session's name is then used (the one last
given to ``get_next_task`` in this MCP session, see ``caller.AgentNames``). A
task is completed, failed or extended only by the agent name and credential
holding its lease, exactly as on TaskDriver's HTTP face.
"""

from __future__ import annotations

import time
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from corral.api.dialects.taskdriver import render
from corral.api.timefmt import iso
from corral.errors import InvalidInput, Unavailable
from corral.mcp.arguments import AgentName, OptionalProjectRef, ProjectRef, TaskId
from corral.mcp.caller import AgentNames, caller
from corral.mcp.failures import tool_errors
from corral.mcp.results import dump
from corral.services.container import Services

NO_TASK = "No tasks available for assignment"


def register(server: MCPServer, services: Services, names: AgentNames) -> None:
    agents, projects = services.agents, services.projects

    @server.tool(structured_output=False)
    async def get_next_task(
        projectId: ProjectRef, ctx: Context, agentName: AgentName = None
    ) -> str:
        """Take the next task of a project's queue under a lease (or resume the one this
        agent holds). Read the project's instructions (get_project) first; finish with
        complete_task or fail_task, and extend_task_lease for long work."""
        with tool_errors():
            who = caller(ctx)
            name = names.name_for(who, agentName, remember=True)
            project_id = await projects.project_id_of(projectId)
            job = await agents.next_task(who.principal, name, project_id)
            if job is None:
                return dump({"task": None, "agentName": name, "message": NO_TASK})
            return dump({"task": render.task_view(job), "agentName": name, "id": job.id})

    @server.tool(structured_output=False)
    async def peek_next_task(projectId: ProjectRef, ctx: Context) -> str:
        """How many tasks wait in a project's queue, without taking one."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            available = await agents.peek(caller(ctx).principal, project_id)
            return dump({"projectId": project_id, "tasksAvailable": available})

    @server.tool(structured_output=False)
    async def complete_task(
        taskId: TaskId,
        result: str,
        ctx: Context,
        outputs: dict[str, Any] | None = None,
        agentName: AgentName = None,
        projectId: OptionalProjectRef = None,
    ) -> str:
        """Report a task you hold as done, with its result text and structured outputs;
        this ends the lease."""
        with tool_errors():
            who = caller(ctx)
            name = names.name_for(who, agentName)
            job = await agents.complete(who.principal, taskId, name, result, outputs or {})
            return dump(render.task_view(job))

    @server.tool(structured_output=False)
    async def fail_task(
        taskId: TaskId,
        error: str,
        ctx: Context,
        canRetry: bool = True,
        agentName: AgentName = None,
        projectId: OptionalProjectRef = None,
    ) -> str:
        """Report a task you hold as failed, saying why; with canRetry it is queued again
        while retries remain."""
        with tool_errors():
            who = caller(ctx)
            name = names.name_for(who, agentName)
            job = await agents.fail(who.principal, taskId, name, error, canRetry)
            return dump(render.task_view(job))

    async def extend(
        ctx: Context,
        taskId: TaskId,
        minutes: float | None,
        extensionMinutes: float | None,
        agentName: AgentName,
    ) -> str:
        with tool_errors():
            length = minutes if minutes is not None else extensionMinutes
            if length is None:
                raise InvalidInput("minutes is required (1-1440)", field="minutes")
            who = caller(ctx)
            name = names.name_for(who, agentName)
            job = await agents.extend_lease(who.principal, taskId, name, length)
            return dump(
                {
                    "taskId": job.id,
                    "agentName": job.executor_id,
                    "leaseExpiresAt": iso(job.lease_expires_at),
                    "extensionMinutes": length,
                }
            )

    @server.tool(structured_output=False)
    async def extend_task_lease(
        taskId: TaskId,
        ctx: Context,
        minutes: float | None = None,
        extensionMinutes: float | None = None,
        agentName: AgentName = None,
    ) -> str:
        """Keep a task you hold for longer: its lease then ends that many minutes from
        now (1-1440). Call it before the lease runs out on long work."""
        return await extend(ctx, taskId, minutes, extensionMinutes, agentName)

    @server.tool(structured_output=False)
    async def extend_lease(
        taskId: TaskId,
        ctx: Context,
        minutes: float | None = None,
        extensionMinutes: float | None = None,
        agentName: AgentName = None,
    ) -> str:
        """The same as extend_task_lease (its older name)."""
        return await extend(ctx, taskId, minutes, extensionMinutes, agentName)

    register_monitoring(server, services)


def register_monitoring(server: MCPServer, services: Services) -> None:
    agents, projects = services.agents, services.projects

    @server.tool(structured_output=False)
    async def list_active_agents(projectId: ProjectRef, ctx: Context) -> str:
        """Agents working on a project's tasks now (one row per lease)."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            running = await agents.active_agents(caller(ctx).principal, project_id)
            return dump([_lease(job) for job in running])

    @server.tool(structured_output=False)
    async def get_project_stats(projectId: ProjectRef, ctx: Context) -> str:
        """A project's task counts, queue depth, active agents and last hour's activity."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            stats = await projects.stats(caller(ctx).principal, project_id)
            return dump(render.stats_view(stats))

    @server.tool(structured_output=False)
    async def get_lease_stats(projectId: ProjectRef, ctx: Context) -> str:
        """The leases of a project's running tasks: how many, and how many expired (which
        cleanup_expired_leases, or the reaper, will take back)."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            running = await agents.active_agents(caller(ctx).principal, project_id)
            now = time.time()
            expired = [j for j in running if (j.lease_expires_at or 0.0) <= now]
            data = {
                "projectId": project_id,
                "runningTasks": len(running),
                "activeAgents": len({j.executor_id for j in running}),
                "expiredLeases": len(expired),
                "leases": [_lease(job) for job in running],
            }
            return dump(data)

    @server.tool(structured_output=False)
    async def cleanup_expired_leases(projectId: ProjectRef, ctx: Context) -> str:
        """Take back every expired lease now, rather than at the reaper's next pass."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            done = await agents.cleanup_leases(caller(ctx).principal, project_id)
            return dump(
                {"reclaimedTasks": done.reclaimed_tasks, "cleanedAgents": done.cleaned_agents}
            )

    @server.tool(structured_output=False)
    async def health_check(ctx: Context) -> str:
        """Whether Corral and its database answer; call it when other tools fail oddly."""
        with tool_errors():
            caller(ctx)
            now = time.time()
            try:
                await services.store.ping()
                healthy = True
            except Unavailable:
                healthy = False
            data = {
                "status": "healthy" if healthy else "unhealthy",
                "timestamp": iso(now),
                "uptime": int(max(now - services.started_at, 0)),
                "storage": {"healthy": healthy, "provider": services.store.backend},
            }
            return dump(data)


def _lease(job: Any) -> dict[str, Any]:
    return {
        "agentName": job.executor_id,
        "taskId": job.id,
        "assignedAt": iso(job.started_at),
        "leaseExpiresAt": iso(job.lease_expires_at),
        "status": job.status.value,
    }
