"""Who may call each route at all, checked as soon as the caller is known.

FastAPI validates a route's path, query and body only after all of its
dependencies ran, and the services decide who may do what only once the route
runs, after that validation. A caller the route would refuse could thus learn
from a 400/422 what the route expects (an agent's ``POST /api/projects {}``
answered 422). So ``principal_of``, the dependency every authenticated route
goes through, checks the coarse right of the route first: may this *role* ever
succeed here? A role that may not is refused (403) before any validation.

This table is only that gate. The services keep every finer check (owners,
leases, projects, executors) and stay the authority: a route missing here
loses nothing but the ordering, and a test walks every route of the app to keep
the table complete.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from corral.auth.policy import Action, can, is_agent_session
from corral.domain.principals import Principal, Role
from corral.errors import Forbidden

AGENT = "agent"  # TaskDriver's agents: the service then checks it is their own project
AGENT_SESSION = "agent-session"  # an agent session, not an agent token
Right = tuple[Action | str, ...]  # any one of these lets a caller through

READ: Right = (Action.READ,)
SUBMIT: Right = (Action.SUBMIT,)
CANCEL: Right = (Action.CANCEL,)
EXECUTE: Right = (Action.EXECUTE,)
REGISTER: Right = (Action.REGISTER_EXECUTOR,)
ADMIN: Right = (Action.ADMIN,)
FILE: Right = (Action.READ, Action.EXECUTE)  # workers read the input of a job they hold
PROJECT_READ: Right = (Action.READ, AGENT)  # an agent reads its own project
QUEUE_VIEW: Right = (Action.READ, Action.EXECUTE)
SESSION: Right = (AGENT_SESSION,)
ANYONE: Right = (Action.READ, Action.EXECUTE, Action.REGISTER_EXECUTOR)  # "who am I"

RIGHTS: dict[tuple[str, str], Right] = {
    # native: jobs, output, executing
    ("POST", "/api/v1/jobs"): SUBMIT,
    ("POST", "/api/v1/jobs/bulk"): SUBMIT,
    ("GET", "/api/v1/jobs"): READ,
    ("GET", "/api/v1/jobs/{job_id}"): READ,
    ("DELETE", "/api/v1/jobs/{job_id}"): CANCEL,
    ("POST", "/api/v1/jobs/bulk/cancel"): CANCEL,
    ("GET", "/api/v1/jobs/{job_id}/output"): READ,
    ("GET", "/api/v1/jobs/{job_id}/output/follow"): READ,
    ("GET", "/api/v1/jobs/{job_id}/output/interleaved"): READ,
    ("POST", "/api/v1/jobs/{job_id}/resubmit"): SUBMIT,
    ("POST", "/api/v1/jobs/claim"): EXECUTE,
    ("PUT", "/api/v1/jobs/{job_id}/heartbeat"): EXECUTE,
    ("PUT", "/api/v1/jobs/{job_id}/complete"): EXECUTE,
    ("PUT", "/api/v1/jobs/{job_id}/fail"): EXECUTE,
    ("POST", "/api/v1/jobs/results"): EXECUTE,
    ("POST", "/api/v1/jobs/{job_id}/release"): EXECUTE,
    ("POST", "/api/v1/jobs/{job_id}/output"): EXECUTE,
    ("POST", "/api/v1/jobs/{job_id}/artifacts"): EXECUTE,
    # native: dependencies and workflows (issue 15); a worker reads the dependencies
    # (and their results) of a job it holds
    ("GET", "/api/v1/jobs/{job_id}/dependencies"): QUEUE_VIEW,
    ("POST", "/api/v1/workflows"): SUBMIT,
    ("GET", "/api/v1/workflows"): READ,
    ("GET", "/api/v1/workflows/{workflow_id}"): READ,
    ("DELETE", "/api/v1/workflows/{workflow_id}"): CANCEL,
    # native: executors, fleet, stats, files, administration
    ("POST", "/api/v1/executors"): REGISTER,
    ("POST", "/api/v1/executors/{executor_id}/heartbeat"): EXECUTE,
    ("POST", "/api/v1/executors/{executor_id}/drain"): EXECUTE,
    ("DELETE", "/api/v1/executors/{executor_id}"): EXECUTE,
    ("GET", "/api/v1/executors"): READ,
    ("GET", "/api/v1/admin/executors"): READ,
    ("GET", "/api/v1/admin/stats"): READ,
    ("GET", "/api/v1/metrics"): READ,
    ("POST", "/api/v1/files"): SUBMIT,
    ("GET", "/api/v1/files/{file_id}"): FILE,
    ("GET", "/api/v1/jobs/{job_id}/artifacts"): READ,
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{artifact_id}"): READ,
    ("POST", "/api/v1/admin/tokens"): ADMIN,
    ("GET", "/api/v1/admin/tokens"): ADMIN,
    ("DELETE", "/api/v1/admin/tokens/{token_id}"): ADMIN,
    ("GET", "/api/v1/me"): ANYONE,
    ("GET", "/api/v1/me/tokens"): READ,
    ("POST", "/api/v1/me/tokens"): READ,
    ("DELETE", "/api/v1/me/tokens/{token_id}"): READ,
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("POST", "/api/v1/admin/users"): ADMIN,
    ("PATCH", "/api/v1/admin/users/{user_id}"): ADMIN,
    # native: schedules (owners and admins change them: the service checks the owner)
    ("POST", "/api/v1/schedules"): SUBMIT,
    ("GET", "/api/v1/schedules"): READ,
    ("GET", "/api/v1/schedules/{schedule_id}"): READ,
    ("PATCH", "/api/v1/schedules/{schedule_id}"): CANCEL,
    ("DELETE", "/api/v1/schedules/{schedule_id}"): CANCEL,
    # CMD Executor
    ("POST", "/api/workers/register"): REGISTER,
    ("POST", "/api/workers/heartbeat"): EXECUTE,
    ("GET", "/api/workers/list"): READ,
    ("GET", "/api/workers/{worker_id}"): READ,
    ("DELETE", "/api/workers/{worker_id}"): EXECUTE,
    ("POST", "/api/jobs/submit"): SUBMIT,
    ("GET", "/api/jobs/get-job"): EXECUTE,
    ("GET", "/api/jobs/status"): READ,
    ("GET", "/api/jobs/list"): READ,
    ("POST", "/api/jobs/submit-result"): EXECUTE,
    ("POST", "/api/jobs/stream-output"): EXECUTE,
    ("WS", "/api/jobs/stream"): READ,
    ("POST", "/api/files/upload"): SUBMIT,
    ("GET", "/api/files/download/{file_id}"): FILE,
    ("GET", "/uploads/{file_id}/{filename}"): FILE,
    # Octaskly
    ("POST", "/api/v1/tasks"): SUBMIT,
    ("GET", "/api/v1/tasks"): READ,
    ("GET", "/api/v1/tasks/{task_id}"): READ,
    ("DELETE", "/api/v1/tasks/{task_id}"): CANCEL,
    ("GET", "/api/v1/stats"): READ,
    ("GET", "/metrics"): READ,
    # TaskDriver
    ("GET", "/api/projects"): READ,
    ("POST", "/api/projects"): ADMIN,
    ("GET", "/api/projects/{project_id}"): PROJECT_READ,
    ("PUT", "/api/projects/{project_id}"): ADMIN,
    ("DELETE", "/api/projects/{project_id}"): ADMIN,
    ("GET", "/api/projects/{project_id}/stats"): PROJECT_READ,
    ("GET", "/api/projects/{project_id}/task-types"): PROJECT_READ,
    ("POST", "/api/projects/{project_id}/task-types"): ADMIN,
    ("GET", "/api/task-types/{type_id}"): PROJECT_READ,
    ("PUT", "/api/task-types/{type_id}"): ADMIN,
    ("DELETE", "/api/task-types/{type_id}"): ADMIN,
    ("POST", "/api/projects/{project_id}/tasks"): SUBMIT,
    ("POST", "/api/projects/{project_id}/tasks/bulk"): SUBMIT,
    ("GET", "/api/projects/{project_id}/tasks"): READ,
    ("GET", "/api/tasks/{task_id}"): READ,
    ("PUT", "/api/tasks/{task_id}"): CANCEL,
    ("DELETE", "/api/tasks/{task_id}"): CANCEL,
    ("POST", "/api/agents/{agentName}/next-task"): EXECUTE,
    ("POST", "/api/tasks/{taskId}/complete"): EXECUTE,
    ("POST", "/api/tasks/{taskId}/fail"): EXECUTE,
    ("POST", "/api/tasks/{taskId}/extend-lease"): EXECUTE,
    ("POST", "/api/projects/{projectId}/cleanup-leases"): EXECUTE,
    ("GET", "/api/projects/{projectId}/peek-next-task"): QUEUE_VIEW,
    ("GET", "/api/projects/{projectId}/agents"): QUEUE_VIEW,
    ("GET", "/api/auth/session"): SESSION,
    ("PUT", "/api/auth/session"): SESSION,
    ("GET", "/metrics/json"): READ,
}


def route_key(connection: HTTPConnection) -> tuple[str, str] | None:
    """(method, path template) of the matched route; HEAD is its GET, a WebSocket "WS"."""
    route = connection.scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    if connection.scope["type"] == "websocket":
        return "WS", path
    method = connection.scope.get("method", "GET")
    return ("GET" if method == "HEAD" else method), path


def may_call(principal: Principal, right: Right) -> bool:
    return any(_has(principal, kind) for kind in right)


def _has(principal: Principal, kind: Action | str) -> bool:
    if kind == AGENT:
        return principal.role is Role.AGENT
    if kind == AGENT_SESSION:
        return is_agent_session(principal)
    return can(principal, Action(kind))


def require_route_right(connection: HTTPConnection, principal: Principal) -> None:
    """Refuse, before any validation, a role that may never succeed on this route."""
    key = route_key(connection)
    right = RIGHTS.get(key) if key is not None else None
    if right is not None and not may_call(principal, right):
        method, path = key or ("", "")
        raise Forbidden(f"role {principal.role} may not call {method} {path}")
