"""TaskDriver's project and task type tools, by TaskDriver's MCP names and arguments.

Arguments are checked by the TaskDriver HTTP face's own bodies (``schemas.py``),
so a value refused there is refused here with the same rule; results are that
face's views. ``projectId`` takes a project's id or its name.
"""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer

from corral.api.dialects.taskdriver import render
from corral.api.dialects.taskdriver.schemas import ProjectBody, TaskTypeBody
from corral.domain.principals import Role
from corral.domain.projects import ProjectStatus
from corral.errors import InvalidInput
from corral.mcp.arguments import OptionalProjectRef, ProjectRef, TypeRef
from corral.mcp.caller import caller
from corral.mcp.failures import tool_errors
from corral.mcp.results import dump
from corral.services.container import Services

STATUS_FILTERS: dict[str, ProjectStatus | None] = {
    "active": ProjectStatus.ACTIVE,
    "closed": ProjectStatus.CLOSED,
    "all": None,
}


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def register(server: MCPServer, services: Services) -> None:
    projects = services.projects

    @server.tool(structured_output=False)
    async def create_project(
        name: str,
        ctx: Context,
        description: str | None = None,
        instructions: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> str:
        """Create a TaskDriver project: a queue of tasks for agents, with instructions
        agents read before every task. config: defaultMaxRetries,
        defaultLeaseDurationMinutes, reaperIntervalMinutes. Admins only."""
        with tool_errors():
            body = ProjectBody.model_validate(
                _given(name=name, description=description, instructions=instructions, config=config)
            )
            view = await projects.create_project(caller(ctx).principal, body.changes())
            return dump(render.project_view(view))

    @server.tool(structured_output=False)
    async def list_projects(
        ctx: Context,
        status: Literal["active", "closed", "all"] = "active",
        limit: int = 100,
        offset: int = 0,
    ) -> str:
        """List projects (default: the active ones) with their task counts. Use it to find
        the project to work on; an agent token sees only its own project."""
        with tool_errors():
            principal = caller(ctx).principal
            if principal.role is Role.AGENT and principal.project_id is not None:
                view = await projects.get_project(principal, principal.project_id)
                return dump([render.project_view(view)])
            if not 1 <= limit <= 100 or offset < 0:
                raise InvalidInput("limit must be 1-100 and offset at least 0", field="limit")
            views, _ = await projects.list_projects(
                principal, STATUS_FILTERS[status], limit, offset
            )
            return dump([render.project_view(v) for v in views])

    @server.tool(structured_output=False)
    async def get_project(projectId: ProjectRef, ctx: Context) -> str:
        """Read a project, its instructions first: read them before starting any task."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            view = await projects.get_project(caller(ctx).principal, project_id)
            return dump(render.project_view(view))

    @server.tool(structured_output=False)
    async def update_project(
        projectId: ProjectRef,
        ctx: Context,
        description: str | None = None,
        instructions: str | None = None,
        status: Literal["active", "closed"] | None = None,
        config: dict[str, Any] | None = None,
    ) -> str:
        """Change a project's description, instructions, status (closed: takes no new
        tasks) or config. Admins only."""
        with tool_errors():
            body = ProjectBody.model_validate(
                _given(
                    description=description, instructions=instructions, status=status, config=config
                )
            )
            project_id = await projects.project_id_of(projectId)
            view = await projects.update_project(caller(ctx).principal, project_id, body.changes())
            return dump(render.project_view(view))

    register_task_types(server, services)


def register_task_types(server: MCPServer, services: Services) -> None:
    projects = services.projects

    @server.tool(structured_output=False)
    async def create_task_type(
        projectId: ProjectRef,
        name: str,
        ctx: Context,
        template: str | None = None,
        variables: list[str] | None = None,
        duplicateHandling: Literal["ignore", "allow", "fail"] | None = None,
        maxRetries: int | None = None,
        leaseDurationMinutes: float | None = None,
    ) -> str:
        """Create a task type: a template with {{variable}} placeholders that tasks fill
        in, how duplicates are handled, retries and lease length. Admins only."""
        with tool_errors():
            body = TaskTypeBody.model_validate(
                _given(
                    name=name,
                    template=template,
                    variables=variables,
                    duplicateHandling=duplicateHandling,
                    maxRetries=maxRetries,
                    leaseDurationMinutes=leaseDurationMinutes,
                )
            )
            project_id = await projects.project_id_of(projectId)
            task_type = await projects.create_task_type(
                caller(ctx).principal, project_id, body.changes()
            )
            return dump(render.task_type_view(task_type))

    @server.tool(structured_output=False)
    async def list_task_types(projectId: ProjectRef, ctx: Context) -> str:
        """List a project's task types, to pick the typeId of the tasks to create."""
        with tool_errors():
            project_id = await projects.project_id_of(projectId)
            types = await projects.list_task_types(caller(ctx).principal, project_id)
            return dump([render.task_type_view(t) for t in types])

    @server.tool(structured_output=False)
    async def get_task_type(
        typeId: TypeRef, ctx: Context, projectId: OptionalProjectRef = None
    ) -> str:
        """Read one task type (by id, or by name within projectId)."""
        with tool_errors():
            type_id = await _type_id(services, projectId, typeId)
            task_type = await projects.get_task_type(caller(ctx).principal, type_id)
            return dump(render.task_type_view(task_type))

    @server.tool(structured_output=False)
    async def update_task_type(
        typeId: TypeRef,
        ctx: Context,
        projectId: OptionalProjectRef = None,
        name: str | None = None,
        template: str | None = None,
        variables: list[str] | None = None,
        duplicateHandling: Literal["ignore", "allow", "fail"] | None = None,
        maxRetries: int | None = None,
        leaseDurationMinutes: float | None = None,
    ) -> str:
        """Change a task type; tasks already created keep their instructions. Admins only."""
        with tool_errors():
            body = TaskTypeBody.model_validate(
                _given(
                    name=name,
                    template=template,
                    variables=variables,
                    duplicateHandling=duplicateHandling,
                    maxRetries=maxRetries,
                    leaseDurationMinutes=leaseDurationMinutes,
                )
            )
            type_id = await _type_id(services, projectId, typeId)
            task_type = await projects.update_task_type(
                caller(ctx).principal, type_id, body.changes()
            )
            return dump(render.task_type_view(task_type))


async def _type_id(services: Services, project_ref: str | None, type_ref: str) -> str:
    if project_ref is None:
        return type_ref
    project_id = await services.projects.project_id_of(project_ref)
    return await services.projects.type_id_of(project_id, type_ref)
