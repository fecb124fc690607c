"""Which tools and prompts a caller may use: the listing a token receives omits the
rest, and a call to one of them is refused before its arguments are even read.

The table holds the coarse right of each tool, in the terms of the HTTP faces'
route table (``api/route_rights``): may this role ever succeed here? The
services behind each tool keep every finer check (owners, leases, projects).
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent

from corral.api.route_rights import (
    ADMIN,
    CANCEL,
    EXECUTE,
    PROJECT_READ,
    QUEUE_VIEW,
    READ,
    SUBMIT,
    Right,
    may_call,
)
from corral.domain.principals import Principal
from corral.mcp.caller import principal_of_request
from corral.mcp.failures import tidy_result

ANYONE: Right = ()  # any authenticated caller

TOOL_RIGHTS: dict[str, Right] = {
    # TaskDriver: projects and task types
    "create_project": ADMIN,
    "list_projects": PROJECT_READ,
    "get_project": PROJECT_READ,
    "update_project": ADMIN,
    "create_task_type": ADMIN,
    "list_task_types": PROJECT_READ,
    "get_task_type": PROJECT_READ,
    "update_task_type": ADMIN,
    # TaskDriver: tasks, agents, leases
    "create_task": SUBMIT,
    "create_tasks_bulk": SUBMIT,
    "list_tasks": READ,
    "get_task": READ,
    "get_next_task": EXECUTE,
    "peek_next_task": QUEUE_VIEW,
    "complete_task": EXECUTE,
    "fail_task": EXECUTE,
    "extend_task_lease": EXECUTE,
    "extend_lease": EXECUTE,
    "list_active_agents": QUEUE_VIEW,
    "get_project_stats": PROJECT_READ,
    "get_lease_stats": QUEUE_VIEW,
    "cleanup_expired_leases": EXECUTE,
    "health_check": ANYONE,
    # Corral's command fleet
    "submit_command": SUBMIT,
    "get_job": READ,
    "wait_for_job": READ,
    "tail_output": READ,
    "cancel_job": CANCEL,
    "list_jobs": READ,
    "list_workers": READ,
}

PROMPT_RIGHTS: dict[str, Right] = {"work_queue": EXECUTE}


def allowed(principal: Principal | None, right: Right | None) -> bool:
    """Unknown names pass (the SDK answers them); nothing passes without a caller."""
    if right is None:
        return True
    if principal is None:
        return False
    return right == ANYONE or may_call(principal, right)


def _listed(
    result: HandlerResult, key: str, rights: dict[str, Right], who: Principal | None
) -> HandlerResult:
    if isinstance(result, dict) and isinstance(result.get(key), list):
        items = result[key]
        result[key] = [i for i in items if allowed(who, rights.get(str(i.get("name"))))]
    return result


def refusal(name: str, principal: Principal | None) -> CallToolResult:
    role = principal.role.value if principal is not None else "an unauthenticated caller"
    text = f"forbidden: role {role} may not call {name}"
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class ScopedAccess:
    """Server middleware: filters ``tools/list``/``prompts/list``, gates their calls,
    and tidies the SDK's text for arguments that do not fit a tool's schema."""

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        who = principal_of_request(ctx.request)
        name = str((ctx.params or {}).get("name", ""))
        if ctx.method == "tools/call" and not allowed(who, TOOL_RIGHTS.get(name)):
            return refusal(name, who)
        if ctx.method == "prompts/get" and not allowed(who, PROMPT_RIGHTS.get(name)):
            message = f"forbidden: this token may not use the prompt {name}"
            raise MCPError(code=INVALID_PARAMS, message=message)
        result: HandlerResult = await call_next(ctx)
        if ctx.method == "tools/list":
            return _listed(result, "tools", TOOL_RIGHTS, who)
        if ctx.method == "prompts/list":
            return _listed(result, "prompts", PROMPT_RIGHTS, who)
        if ctx.method == "tools/call":
            tidied: HandlerResult = tidy_result(result)
            return tidied
        return result
