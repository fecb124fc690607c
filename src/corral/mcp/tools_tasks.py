"""TaskDriver's task tools: create (one or in bulk), list and read tasks.

A task is a Corral job in a project: the id these tools return is the id the
TaskDriver HTTP face, the native API and the dashboard show for the same job.
"""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer

from corral.api.dialects.taskdriver import render
from corral.api.dialects.taskdriver.schemas import BulkBody, TaskBody
from corral.api.status_names import parse_status
from corral.domain.principals import Principal
from corral.domain.priority import parse_priority
from corral.errors import InvalidInput
from corral.mcp.arguments import OptionalProjectRef, OptionalTypeRef, ProjectRef, TaskId
from corral.mcp.caller import caller
from corral.mcp.failures import tool_errors
from corral.mcp.results import dump
from corral.services.container import Services
from corral.services.tasks import Created, TaskFilter, TaskRequest

MAX_LIST = 1000


def _request(body: TaskBody, batch_id: str | None = None, field: str = "") -> TaskRequest:
    return TaskRequest(
        type_id=body.type_id,
        instructions=body.instructions,
        variables=body.variables,
        batch_id=body.batch_id or batch_id,
        command=body.command,
        priority=parse_priority(body.priority),
        timeout=body.timeout,
        field=field,
    )


def _created(created: Created) -> dict[str, Any]:
    pairs = list(zip(created.tasks, created.created, strict=True))
    return {
        "tasks": [render.task_view(job) for job in created.tasks],
        "created": [job.id for job, new in pairs if new],
        "existing": [job.id for job, new in pairs if not new],
        "createdCount": sum(created.created),
        "existingCount": len(pairs) - sum(created.created),
    }


def register(server: MCPServer, services: Services) -> None:
    projects, task_service = services.projects, services.tasks

    @server.tool(structured_output=False)
    async def create_task(
        projectId: ProjectRef,
        ctx: Context,
        typeId: OptionalTypeRef = None,
        type: OptionalTypeRef = None,
        instructions: str | None = None,
        variables: dict[str, Any] | None = None,
        batchId: str | None = None,
        command: str | None = None,
        priority: Literal["high", "normal", "low"] = "normal",
    ) -> str:
        """Queue one task for agents. typeId (or type) is the task type's id or name, by
        default the project's first; without instructions, the type's template is
        filled in with variables. Use create_tasks_bulk for many similar tasks."""
        with tool_errors():
            principal = caller(ctx).principal
            project_id = await projects.project_id_of(projectId)
            type_id = await _task_type(services, principal, project_id, typeId or type)
            body = TaskBody.model_validate(
                {
                    "typeId": type_id,
                    "instructions": instructions,
                    "variables": variables or {},
                    "batchId": batchId,
                    "command": command,
                    "priority": priority,
                }
            )
            created = await task_service.create_tasks(principal, project_id, [_request(body)])
            view = render.task_view(created.tasks[0])
            return dump({**view, "created": created.created[0]})

    @server.tool(structured_output=False)
    async def create_tasks_bulk(
        projectId: ProjectRef, tasks: list[dict[str, Any]], ctx: Context, batchId: str | None = None
    ) -> str:
        """Queue many tasks at once, all or none: tasks is a list of {typeId,
        instructions?, variables?, batchId?}. Ideal for one task per file, item or row."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            items = [await _typed(services, project_id, t) for t in tasks]
            body = BulkBody.model_validate({"tasks": items, "batchId": batchId})
            requests = [_request(t, body.batch_id, f"tasks.{i}.") for i, t in enumerate(body.tasks)]
            created = await task_service.create_tasks(caller(ctx).principal, project_id, requests)
            return dump({**_created(created), "batchId": body.batch_id})

    @server.tool(structured_output=False)
    async def list_tasks(
        projectId: ProjectRef,
        ctx: Context,
        status: Literal["queued", "running", "completed", "failed", "cancelled"] | None = None,
        assignedTo: str | None = None,
        batchId: str | None = None,
        typeId: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> str:
        """List a project's tasks in queue order, filtered by status, agent, batch or
        type: to follow progress or find failed tasks."""
        with tool_errors():
            if not 1 <= limit <= MAX_LIST or offset < 0:
                raise InvalidInput(f"limit must be 1-{MAX_LIST}, offset at least 0", field="limit")
            project_id = await projects.project_id_of(projectId)
            type_id = await projects.type_id_of(project_id, typeId) if typeId else None
            flt = TaskFilter(parse_status(status), assignedTo, batchId, type_id)
            jobs, total = await task_service.list_tasks(
                caller(ctx).principal, project_id, flt, limit, offset
            )
            return dump({"tasks": [render.task_view(j) for j in jobs], "total": total})

    @server.tool(structured_output=False)
    async def get_task(taskId: TaskId, ctx: Context, projectId: OptionalProjectRef = None) -> str:
        """Read one task: status, agent, lease, result or error."""
        with tool_errors():
            job = await task_service.get_task(caller(ctx).principal, taskId)
            return dump(render.task_view(job))


async def _task_type(
    services: Services, principal: Principal, project_id: str, ref: str | None
) -> str:
    """The named type's id, or (as TaskDriver does) the project's first type's."""
    if ref is not None:
        return await services.projects.type_id_of(project_id, ref)
    types = await services.projects.list_task_types(principal, project_id)
    if not types:
        raise InvalidInput("the project has no task type: create one first", field="typeId")
    return types[0].id


async def _typed(services: Services, project_id: str, task: Any) -> Any:
    """A bulk item with its ``typeId`` (or ``type``) resolved from a name to an id."""
    if not isinstance(task, dict):
        return task  # refused by the body's own check, with its position
    ref = task.get("typeId", task.get("type"))
    if not isinstance(ref, str):
        return task
    return {**task, "typeId": await services.projects.type_id_of(project_id, ref)}
