"""The route x role authorization walk (acceptance of issue 4).

``POLICY`` below is the documentation of who may do what: every route of the
real app, HTTP and WebSocket, with the answer each kind of caller gets. The
walk fails when the app has a route the table lacks (a route with no policy)
and when the table names a route the app no longer has. Then every (route,
role) is called over real HTTP with a *valid* request (FastAPI validates a
body before any dependency or service runs, so a bad body would hide a 403
behind a 400), and the answer must be what the table says. Finally the store
must hold only what the allowed calls created.

Roles: ``anonymous`` (no credentials); ``viewer``, ``submitter`` and ``admin``
each as a login JWT and as an opaque API token; ``worker`` (a token bound to a
registered CMD Executor worker as ``x-worker-token`` on that dialect's routes,
an unbound worker token as Bearer everywhere else); ``agent`` (a TaskDriver
session token of one agent in one project, as Bearer); ``agent_token`` (an
agent API token bound to that project, the credential the agent's sessions are
earned with: by default it gets what the session gets); and, where an object
has an owner, ``other_user`` (a second submitter acting on the first one's job,
task or file), ``other_worker`` (a worker acting on a job leased to, or an
executor registered by, another worker) and ``other_agent`` (the session of an
agent of another project acting on the first project's queue and tasks).
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from corral.api.app import create_app
from corral.api.dashboard.routing import PageRoute
from corral.api.route_rights import RIGHTS
from corral.settings import ServerSettings
from tests.live import LiveServer, run_server

RouteKey = tuple[str, str]  # (method, path template); WebSockets have the method "WS"
Expect = int | str | tuple[int, ...]  # OK, PASSES, or the status(es) of the refusal

ANONYMOUS = "anonymous"
VIEWER = "viewer"
SUBMITTER = "submitter"
ADMIN = "admin"
WORKER = "worker"
OTHER_USER = "other_user"
OTHER_WORKER = "other_worker"
AGENT = "agent"
OTHER_AGENT = "other_agent"
AGENT_TOKEN = "agent_token"
HUMANS = (VIEWER, SUBMITTER, ADMIN)
JWT, TOKEN = "jwt", "token"  # the two kinds of credential a person may present

OK = "ok"  # allowed, and the walk's request succeeds (2xx, or 101 for a WebSocket)
PASSES = "passes"  # the policy lets it through, but this caller cannot make the call succeed


@dataclass(frozen=True)
class Rule:
    """What each caller gets from one route: OK, PASSES, or the status of the refusal."""

    anonymous: Expect
    viewer: Expect
    submitter: Expect
    admin: Expect
    worker: Expect
    agent: Expect  # a TaskDriver session: 403 outside TaskDriver's agent operations
    other_user: Expect | None = None  # only for routes on an object someone owns
    other_worker: Expect | None = None
    other_agent: Expect | None = None
    # An agent API token of the agents' project (issue 11, item 20): by default what its
    # sessions get, since it is good only on that project's agent routes.
    agent_token: Expect | None = None
    kinds: tuple[str, ...] = (JWT, TOKEN)  # credentials the human roles are walked with

    def but(self, **changes: Any) -> Rule:
        return replace(self, **changes)

    def roles(self) -> dict[str, Expect]:
        every = {
            ANONYMOUS: self.anonymous,
            VIEWER: self.viewer,
            SUBMITTER: self.submitter,
            ADMIN: self.admin,
            WORKER: self.worker,
            AGENT: self.agent,
            OTHER_USER: self.other_user,
            OTHER_WORKER: self.other_worker,
            OTHER_AGENT: self.other_agent,
            AGENT_TOKEN: self.agent if self.agent_token is None else self.agent_token,
        }
        return {role: expect for role, expect in every.items() if expect is not None}


#                  anonymous viewer submitter admin worker agent
PUBLIC = Rule(OK, OK, OK, OK, OK, OK)
READ = Rule(401, OK, OK, OK, 403, 403)  # jobs, output, fleet, stats: every human reads all
SUBMIT = Rule(401, 403, OK, OK, 403, 403)
EXECUTE = Rule(401, 403, 403, OK, OK, 403)  # admins may act for any executor
ADMIN_ONLY = Rule(401, 403, 403, OK, 403, 403)
# Login sessions: only a login JWT is one; a worker token is not a session (no Bearer: 401),
# and an agent session is TaskDriver's, not CMD Executor's (refresh: 401).
SESSION = Rule(401, OK, OK, OK, 401, 401, kinds=(JWT,))
# TaskDriver's agent operations: an agent in its own project, for its own name; admins and
# unbound worker tokens for any agent name; the session of another project's agent: 403.
AGENT_OP = EXECUTE.but(agent=OK, other_agent=403)
# TaskDriver's project reads: every reader; an agent only its own project (issue 11, item 25).
OWN_PROJECT = READ.but(agent=OK, other_agent=403)
# TaskDriver's /api/auth/session: only an agent session has one.
AGENT_SESSION = Rule(401, 403, 403, 403, 403, OK, agent_token=403)
# Files: any reader; a worker only the input archive of a job whose lease it holds,
# and another worker's file is hidden from it.
FILE = READ.but(worker=OK, other_user=OK, other_worker=404)

POLICY: dict[RouteKey, Rule] = {
    # public: no credentials needed
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("GET", "/api/v1/health"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,  # an agent logs in with its name and project
    ("GET", "/health"): PUBLIC,  # Octaskly's and TaskDriver's, one body
    # native: jobs (a submitter cancels only its own; the refusal in a bulk is per job)
    ("POST", "/api/v1/jobs"): SUBMIT,
    ("POST", "/api/v1/jobs/bulk"): SUBMIT,
    ("GET", "/api/v1/jobs"): READ,
    ("GET", "/api/v1/jobs/{job_id}"): READ.but(other_user=OK),
    ("DELETE", "/api/v1/jobs/{job_id}"): SUBMIT.but(other_user=403),
    ("POST", "/api/v1/jobs/bulk/cancel"): SUBMIT.but(other_user=403),
    ("GET", "/api/v1/jobs/{job_id}/output"): READ.but(other_user=OK),
    ("GET", "/api/v1/jobs/{job_id}/output/follow"): READ,
    ("GET", "/api/v1/jobs/{job_id}/output/interleaved"): READ.but(other_user=OK),
    ("POST", "/api/v1/jobs/{job_id}/resubmit"): SUBMIT.but(other_user=403),
    # native: dependencies and workflows; a worker reads only the dependencies
    # of a job whose lease it holds (the walk's job is nobody's lease: 403)
    ("GET", "/api/v1/jobs/{job_id}/dependencies"): READ,
    ("POST", "/api/v1/workflows"): SUBMIT,
    ("GET", "/api/v1/workflows"): READ,
    ("GET", "/api/v1/workflows/{workflow_id}"): READ,
    ("DELETE", "/api/v1/workflows/{workflow_id}"): SUBMIT.but(other_user=403),
    # native: schedules (owners and admins change or delete one)
    ("POST", "/api/v1/schedules"): SUBMIT,
    ("GET", "/api/v1/schedules"): READ,
    ("GET", "/api/v1/schedules/{schedule_id}"): READ.but(other_user=OK),
    ("PATCH", "/api/v1/schedules/{schedule_id}"): SUBMIT.but(other_user=403),
    ("DELETE", "/api/v1/schedules/{schedule_id}"): SUBMIT.but(other_user=403),
    # native: executors (another worker's lease: 409, the attempt is not its own)
    ("POST", "/api/v1/jobs/claim"): EXECUTE,
    ("PUT", "/api/v1/jobs/{job_id}/heartbeat"): EXECUTE.but(other_worker=409),
    ("PUT", "/api/v1/jobs/{job_id}/complete"): EXECUTE.but(other_worker=409),
    ("PUT", "/api/v1/jobs/{job_id}/fail"): EXECUTE.but(other_worker=409),
    ("POST", "/api/v1/jobs/results"): EXECUTE.but(other_worker=409),
    ("POST", "/api/v1/jobs/{job_id}/release"): EXECUTE.but(other_worker=409),
    ("POST", "/api/v1/jobs/{job_id}/output"): EXECUTE.but(other_worker=409),
    ("POST", "/api/v1/jobs/{job_id}/artifacts"): EXECUTE.but(other_worker=409),
    ("POST", "/api/v1/executors"): EXECUTE.but(other_worker=(403, 409)),  # a live one's id
    ("POST", "/api/v1/executors/{executor_id}/heartbeat"): EXECUTE.but(other_worker=403),
    ("DELETE", "/api/v1/executors/{executor_id}"): EXECUTE.but(other_worker=403),
    ("POST", "/api/v1/executors/{executor_id}/drain"): EXECUTE.but(other_worker=403),
    # native: fleet views, stats, metrics (metrics need a reader's token)
    ("GET", "/api/v1/executors"): READ,
    ("GET", "/api/v1/admin/executors"): READ,
    ("GET", "/api/v1/admin/stats"): READ,
    ("GET", "/api/v1/metrics"): READ,
    # native: files and artifacts
    ("POST", "/api/v1/files"): SUBMIT,
    ("GET", "/api/v1/files/{file_id}"): FILE,
    ("GET", "/api/v1/jobs/{job_id}/artifacts"): READ,
    ("GET", "/api/v1/jobs/{job_id}/artifacts/{artifact_id}"): READ,
    # native: administration
    ("POST", "/api/v1/admin/tokens"): ADMIN_ONLY,
    ("GET", "/api/v1/admin/tokens"): ADMIN_ONLY,
    ("DELETE", "/api/v1/admin/tokens/{token_id}"): ADMIN_ONLY,
    # "who am I" answers any credential but an agent's (TaskDriver's routes only); personal
    # tokens are for signed-in users: an API token passes the gate and is refused (400),
    # and revoking a token that is not one's own is a 404 for everyone
    ("GET", "/api/v1/me"): Rule(401, OK, OK, OK, OK, 403),
    ("GET", "/api/v1/me/tokens"): READ,
    ("POST", "/api/v1/me/tokens"): READ.but(viewer=PASSES, submitter=PASSES, admin=PASSES),
    ("DELETE", "/api/v1/me/tokens/{token_id}"): READ.but(
        viewer=PASSES, submitter=PASSES, admin=PASSES
    ),
    ("GET", "/api/v1/admin/users"): ADMIN_ONLY,
    ("POST", "/api/v1/admin/users"): ADMIN_ONLY,
    ("PATCH", "/api/v1/admin/users/{user_id}"): ADMIN_ONLY,
    # CMD Executor: sessions (an agent session logs out on the same path)
    ("POST", "/api/auth/logout"): SESSION.but(agent=OK, agent_token=401),
    ("POST", "/api/auth/refresh"): SESSION,
    # CMD Executor: workers (a bound token speaks only for its own worker)
    ("POST", "/api/workers/register"): EXECUTE.but(other_worker=403),
    ("POST", "/api/workers/heartbeat"): EXECUTE.but(other_worker=403),
    ("GET", "/api/workers/list"): READ,
    ("GET", "/api/workers/{worker_id}"): READ,
    ("DELETE", "/api/workers/{worker_id}"): EXECUTE.but(other_worker=403),
    # CMD Executor: jobs (get-job needs a token bound to a registered worker)
    ("POST", "/api/jobs/submit"): SUBMIT,
    ("GET", "/api/jobs/get-job"): EXECUTE.but(admin=PASSES),
    ("GET", "/api/jobs/status"): READ.but(other_user=OK),
    ("GET", "/api/jobs/list"): READ,
    ("POST", "/api/jobs/submit-result"): EXECUTE.but(other_worker=409),
    ("POST", "/api/jobs/stream-output"): EXECUTE.but(other_worker=409),
    ("WS", "/api/jobs/stream"): READ,
    # CMD Executor: files
    ("POST", "/api/files/upload"): SUBMIT,
    ("GET", "/api/files/download/{file_id}"): FILE,
    ("GET", "/uploads/{file_id}/{filename}"): FILE,
    # Octaskly: tasks are jobs (a submitter cancels only its own), stats; workers read nothing
    ("POST", "/api/v1/tasks"): SUBMIT,
    ("GET", "/api/v1/tasks"): READ,
    ("GET", "/api/v1/tasks/{task_id}"): READ.but(other_user=OK),
    ("DELETE", "/api/v1/tasks/{task_id}"): SUBMIT.but(other_user=403),
    ("GET", "/api/v1/stats"): READ,
    # monitoring: the Prometheus registry of /api/v1/metrics, behind the same gate
    ("GET", "/metrics"): READ,
    # TaskDriver: projects and task types (writes are for admins; an agent reads its own
    # project, its stats and its task types, never another project's, nor the list)
    ("GET", "/api/projects"): READ,
    ("POST", "/api/projects"): ADMIN_ONLY,
    ("GET", "/api/projects/{project_id}"): OWN_PROJECT,
    ("PUT", "/api/projects/{project_id}"): ADMIN_ONLY,
    ("DELETE", "/api/projects/{project_id}"): ADMIN_ONLY,
    ("GET", "/api/projects/{project_id}/stats"): OWN_PROJECT,
    ("GET", "/api/projects/{project_id}/task-types"): OWN_PROJECT,
    ("POST", "/api/projects/{project_id}/task-types"): ADMIN_ONLY,
    ("GET", "/api/task-types/{type_id}"): OWN_PROJECT,
    ("PUT", "/api/task-types/{type_id}"): ADMIN_ONLY,
    ("DELETE", "/api/task-types/{type_id}"): ADMIN_ONLY,
    # TaskDriver: tasks (a submitter changes and deletes only its own)
    ("POST", "/api/projects/{project_id}/tasks"): SUBMIT,
    ("POST", "/api/projects/{project_id}/tasks/bulk"): SUBMIT,
    ("GET", "/api/projects/{project_id}/tasks"): READ,
    ("GET", "/api/tasks/{task_id}"): READ.but(other_user=OK),
    ("PUT", "/api/tasks/{task_id}"): SUBMIT.but(other_user=403),
    ("DELETE", "/api/tasks/{task_id}"): SUBMIT.but(other_user=403),
    # TaskDriver: agents (the session's own name and project; peek and the agents list
    # are also open to readers)
    ("POST", "/api/agents/{agentName}/next-task"): AGENT_OP,
    # (another worker token naming the agent whose lease the worker token holds: 403)
    ("POST", "/api/tasks/{taskId}/complete"): AGENT_OP.but(other_worker=403),
    ("POST", "/api/tasks/{taskId}/fail"): AGENT_OP.but(other_worker=403),
    ("POST", "/api/tasks/{taskId}/extend-lease"): AGENT_OP.but(other_worker=403),
    ("POST", "/api/projects/{projectId}/cleanup-leases"): AGENT_OP,
    ("GET", "/api/projects/{projectId}/peek-next-task"): AGENT_OP.but(viewer=OK, submitter=OK),
    ("GET", "/api/projects/{projectId}/agents"): AGENT_OP.but(viewer=OK, submitter=OK),
    # TaskDriver: the agent's session, and the JSON metrics (readers only)
    ("GET", "/api/auth/session"): AGENT_SESSION,
    ("PUT", "/api/auth/session"): AGENT_SESSION,
    ("GET", "/metrics/json"): READ,
}

# Cases where the app does not do what the table says: each must fail until fixed.
KNOWN_BUGS: dict[tuple[RouteKey, str], str] = {}

# Routes that end a session, a lease or an executor: walked last, each on its own objects.
DESTRUCTIVE: frozenset[RouteKey] = frozenset(
    {
        ("POST", "/api/auth/logout"),
        ("POST", "/api/auth/refresh"),
        ("DELETE", "/api/v1/jobs/{job_id}"),
        ("DELETE", "/api/v1/schedules/{schedule_id}"),
        ("POST", "/api/v1/jobs/bulk/cancel"),
        ("PUT", "/api/v1/jobs/{job_id}/complete"),
        ("PUT", "/api/v1/jobs/{job_id}/fail"),
        ("POST", "/api/v1/jobs/results"),
        ("POST", "/api/v1/jobs/{job_id}/release"),
        ("DELETE", "/api/v1/executors/{executor_id}"),
        ("DELETE", "/api/workers/{worker_id}"),
        ("POST", "/api/jobs/submit-result"),
        ("DELETE", "/api/v1/tasks/{task_id}"),
        ("DELETE", "/api/projects/{project_id}"),
        ("DELETE", "/api/task-types/{type_id}"),
        ("DELETE", "/api/tasks/{task_id}"),
        ("POST", "/api/tasks/{taskId}/complete"),
        ("POST", "/api/tasks/{taskId}/fail"),
    }
)


# --- the routes of the real app ---------------------------------------------------------


def _keys_of(route: BaseRoute | Any) -> set[RouteKey]:
    """(method, path) of one entry of ``app.routes``: included routers, API and plain routes."""
    if hasattr(route, "effective_route_contexts"):  # FastAPI's _IncludedRouter
        keys: set[RouteKey] = set()
        for context in route.effective_route_contexts():
            target = context.starlette_route or context.original_route
            if isinstance(target, WebSocketRoute):  # its context has no path and no methods
                keys.add(("WS", target.path))
            elif context.methods:
                keys |= {(m, context.path) for m in context.methods if m != "HEAD"}
            else:
                raise AssertionError(f"a route the walk cannot classify: {target!r}")
        return keys
    if isinstance(route, WebSocketRoute):
        return {("WS", route.path)}
    if isinstance(route, Route) and route.methods:
        return {(m, route.path) for m in route.methods if m != "HEAD"}
    raise AssertionError(f"a route the walk cannot classify: {route!r}")


def _is_dashboard(route: BaseRoute | Any) -> bool:
    """Dashboard pages answer browsers (redirects, HTML, cookies): test_dashboard_policy.py
    walks them, and checks that together the two walks cover every route."""
    if isinstance(route, Mount):  # static files, public by design (Swagger UI's too)
        return route.path in ("/static", "/api/docs/assets")
    if hasattr(route, "effective_route_contexts"):
        return all(
            isinstance(c.original_route, PageRoute) for c in route.effective_route_contexts()
        )
    return False


def app_routes(app: FastAPI) -> set[RouteKey]:
    return set().union(*(_keys_of(route) for route in app.routes if not _is_dashboard(route)))


# --- what the walk sends ----------------------------------------------------------------

ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "admin-password"
PASSWORD = "pw-123456-long"
EMAILS = {VIEWER: "viewer@example.com", SUBMITTER: "submitter@example.com"}
OTHER_EMAIL = "other-submitter@example.com"
LOGINS = {
    ADMIN: (ADMIN_EMAIL, ADMIN_PASSWORD),
    VIEWER: (EMAILS[VIEWER], PASSWORD),
    SUBMITTER: (EMAILS[SUBMITTER], PASSWORD),
    OTHER_USER: (OTHER_EMAIL, PASSWORD),
}
NATIVE = {WORKER: "nat-w1", OTHER_WORKER: "nat-w2"}  # executors of the unbound worker tokens
CMD = {WORKER: "cmd-w1", OTHER_WORKER: "cmd-w2"}  # CMD Executor workers with bound tokens
CMD_TAG = "walk-cmd"
PARKED = "walk-parked"  # a label no claim names: what the walk submits stays pending
PARKED_JOB = {"command": "echo hi", "labels": [PARKED]}
YEARLY = {"name": "walk", "cron": "0 0 1 1 *", "job": PARKED_JOB, "paused": True}
# TaskDriver: the agent's project, whose queue the walk keeps empty (every task in it is
# leased as soon as it is made), the project the walk's tasks go to, and another one.
AGENT_NAME = "walk-agent"  # the agent session's name, in the agents' project
OTHER_AGENT_NAME = "walk-agent-q"  # the session of the other project's agent
WORKER_AGENT = "walk-worker-agent"  # the name the unbound worker token leases under
OWNED_TASK = "submitter A's task"
# Paths where CMD Executor's workers present their bound token as x-worker-token.
CMD_PATHS = (
    "/api/auth/login",
    "/api/auth/logout",
    "/api/auth/refresh",
    "/api/workers/",
    "/api/jobs/",
    "/api/files/",
    "/uploads/",
)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("in.txt", "hello\n")
    return buffer.getvalue()


ZIP = _zip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Caller:
    role: str
    kind: str = JWT  # for the human roles


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str] | None = None  # None: the caller's own credentials
    params: dict[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    on_success: Callable[[httpx.Response], None] | None = None  # keep the ledgers true
    item_status: Callable[[httpx.Response], int] | None = None  # bulk routes refuse per item


@dataclass(frozen=True)
class Held:
    job_id: str
    attempt: int


class World:
    """One live server with the objects the walk acts on, and ledgers of what may exist."""

    def __init__(self, live: LiveServer, http: httpx.Client) -> None:
        self.live = live
        self.http = http
        self.seq = itertools.count(1)
        self.jwt: dict[str, str] = {}
        self.opaque: dict[str, str] = {ADMIN: live.admin_token}
        self.join: dict[str, str] = {}  # WORKER / OTHER_WORKER: unbound worker tokens
        self.bound: dict[str, str] = {}  # WORKER / OTHER_WORKER: tokens bound to CMD workers
        self.session: dict[str, str] = {}  # AGENT / OTHER_AGENT: TaskDriver session tokens
        self.agent_tokens: dict[str, str] = {}  # project id -> that project's agent token
        self.jobs: set[str] = set()
        self.users: set[str] = set()
        self.executors: set[str] = set()
        self.projects: set[str] = set()
        self.task_types: set[str] = set()  # of the intake project
        self.tasks: set[str] = set()  # of the intake project (all of them are in ``jobs`` too)
        # the objects, made by prepare()
        self.file_id = self.filename = self.owned_job = self.cmd_held = ""
        self.owned_schedule = ""  # submitter A's, on a timetable that never fires in a walk
        self.done_job = self.artifact_id = self.patch_target = ""
        self.owned_workflow = ""  # submitter A's workflow, made by the first walk needing it
        self.held = self.other_held = Held("", 0)
        self.project = self.intake = self.other_project = ""  # TaskDriver projects
        self.agent_type = self.intake_type = ""  # a task type in each of the first two
        self.owned_task = self.agent_held = self.worker_held = ""  # TaskDriver tasks

    # plumbing

    def send(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        """Only the credentials given: the login cookie a previous answer set is dropped."""
        self.http.cookies.clear()
        return self.http.request(method, url, headers=headers, **kw)

    def ok(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> Any:
        answer = self.send(method, url, headers, **kw)
        assert answer.is_success, f"{method} {url}: {answer.status_code} {answer.text}"
        return answer.json()

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.live.admin_token)

    def credentials(self, caller: Caller, url: str) -> dict[str, str]:
        """Each dialect's workers authenticate their own way; people with either kind."""
        if caller.role == ANONYMOUS:
            return {}
        if caller.role in (AGENT, OTHER_AGENT):
            return bearer(self.session[caller.role])
        if caller.role == AGENT_TOKEN:
            return self.agent_credential(self.project)
        if caller.role in (WORKER, OTHER_WORKER):
            if url.startswith(CMD_PATHS):
                return {"x-worker-token": self.bound[caller.role]}
            return bearer(self.join[caller.role])
        if caller.role == OTHER_USER:
            return bearer(self.jwt[OTHER_USER])
        return bearer(self.opaque[caller.role] if caller.kind == TOKEN else self.jwt[caller.role])

    # objects

    def login(self, email: str, password: str = PASSWORD) -> str:
        answer = self.ok("POST", "/api/auth/login", {}, json={"email": email, "password": password})
        token: str = answer["token"]
        return token

    def add_user(self, email: str, role: str) -> str:
        body = {"email": email, "password": PASSWORD, "role": role}
        user_id: str = self.ok("POST", "/api/v1/admin/users", self.admin, json=body)["id"]
        self.users.add(user_id)
        return user_id

    def submit(self, headers: dict[str, str], **fields: Any) -> str:
        body = {**PARKED_JOB, **fields}
        job_id: str = self.ok("POST", "/api/v1/jobs", headers, json=body)["id"]
        self.jobs.add(job_id)
        return job_id

    def claim(self, who: str, label: str) -> Held:
        body = {"executor_id": NATIVE[who], "labels": [label], "runnable_only": True}
        job = self.ok("POST", "/api/v1/jobs/claim", bearer(self.join[who]), json=body)
        return Held(job["id"], job["attempt"])

    def fresh_held(self) -> Held:
        """A job of its own, leased to the worker's executor, for a call that finishes it."""
        label = f"walk-fresh-{next(self.seq)}"
        job_id = self.submit(self.admin, labels=[label])
        held = self.claim(WORKER, label)
        assert held.job_id == job_id
        return held

    def fresh_cmd_held(self) -> str:
        body = {"command": "true", "labels": [CMD_TAG]}
        job_id: str = self.ok("POST", "/api/jobs/submit", self.admin, json=body)["jobId"]
        self.jobs.add(job_id)
        headers = {"x-worker-token": self.bound[WORKER]}
        claimed = self.ok("GET", "/api/jobs/get-job", headers)["job"]["jobId"]
        assert claimed == job_id
        return job_id

    def register_cmd_worker(self, worker_id: str, tags: list[str]) -> str:
        body = {"workerId": worker_id, "metadata": {"tags": tags}}
        token: str = self.ok("POST", "/api/workers/register", bearer(self.join[WORKER]), json=body)[
            "token"
        ]
        self.executors.add(worker_id)
        return token

    def throwaway_executor(self) -> str:
        executor_id = f"walk-gone-{next(self.seq)}"
        body = {"executor_id": executor_id}
        self.ok("POST", "/api/v1/executors", bearer(self.join[WORKER]), json=body)
        self.executors.add(executor_id)
        return executor_id

    def agent_credential(self, project_id: str) -> dict[str, str]:
        """The project's agent token, which an agent login must present (issue 11, item 16)."""
        if project_id not in self.agent_tokens:
            body = {"role": "agent", "name": "walk-agents", "project_id": project_id}
            answer = self.ok("POST", "/api/v1/admin/tokens", self.admin, json=body)
            self.agent_tokens[project_id] = answer["token"]
        return bearer(self.agent_tokens[project_id])

    def agent_login(self, name: str, project_id: str) -> str:
        body = {"agentName": name, "projectId": project_id}
        headers = self.agent_credential(project_id)
        token: str = self.ok("POST", "/api/auth/login", headers, json=body)["data"]["token"]
        return token

    def add_project(self, name: str) -> str:
        project_id: str = self.ok("POST", "/api/projects", self.admin, json={"name": name})["data"][
            "id"
        ]
        self.projects.add(project_id)
        return project_id

    def add_task_type(self, project_id: str, name: str) -> str:
        url = f"/api/projects/{project_id}/task-types"
        type_id: str = self.ok("POST", url, self.admin, json={"name": name})["data"]["id"]
        if project_id == self.intake:
            self.task_types.add(type_id)
        return type_id

    def add_task(
        self, project_id: str, headers: dict[str, str], instructions: str = "walk task"
    ) -> str:
        """A task without a command: workers never take it, only an agent's next-task."""
        type_id = self.agent_type if project_id == self.project else self.intake_type
        body = {"typeId": type_id, "instructions": instructions}
        url = f"/api/projects/{project_id}/tasks"
        task_id: str = self.ok("POST", url, headers, json=body)["data"]["id"]
        self.jobs.add(task_id)
        if project_id == self.intake:
            self.tasks.add(task_id)
        return task_id

    def lease(self, agent_name: str, headers: dict[str, str]) -> str:
        """next-task in the agents' project, whose queue holds only the task just made.
        The agent's name is the lease holder, so it is an executor from then on."""
        self.executors.add(agent_name)
        url = f"/api/agents/{agent_name}/next-task"
        task_id: str = self.ok("POST", url, headers, json={"projectId": self.project})["data"]["id"]
        return task_id

    def fresh_agent_held(self, caller: Caller) -> tuple[str, dict[str, str] | None, str | None]:
        """(task, headers, agentName) for a call that finishes a task: a task of its own,
        leased by a fresh agent session (the agent's call is made with that session), or
        by the worker token or the admin (with the very credential it calls with) under a
        name of its own; another worker token names the name the first one holds its
        lease under; the others get the agent's task. (A lease is its holder's alone:
        an admin naming an agent whose lease a session holds gets 403, see
        test_taskdriver_agents.py::test_item16_only_the_holder_reports.)"""
        if caller.role == OTHER_WORKER:
            return self.worker_held, None, WORKER_AGENT
        if caller.role not in (AGENT, ADMIN, WORKER, AGENT_TOKEN):
            return self.agent_held, None, None
        task_id = self.add_task(self.project, self.admin)
        name = f"walk-agent-{next(self.seq)}"
        if caller.role in (WORKER, ADMIN, AGENT_TOKEN):
            assert self.lease(name, self.credentials(caller, "/api/agents")) == task_id
            return task_id, None, name
        session = bearer(self.agent_login(name, self.project))
        assert self.lease(name, session) == task_id
        return (task_id, session, None) if caller.role == AGENT else (task_id, None, name)

    def editable(self, caller: Caller) -> str:
        """A TaskDriver task the caller may change if the table lets it; else A's task."""
        if caller.role == SUBMITTER:  # its own, made with the very same credential
            return self.add_task(self.intake, self.credentials(caller, "/api/projects"))
        if caller.role == ADMIN:  # anyone's
            return self.add_task(self.intake, bearer(self.jwt[SUBMITTER]))
        return self.owned_task

    def cancellable(self, caller: Caller) -> str:
        """A job the caller may cancel if the table lets it; else submitter A's job."""
        if caller.role == SUBMITTER:  # its own, submitted with the very same credential
            return self.submit(self.credentials(caller, "/api/v1/"))
        if caller.role == ADMIN:  # anyone's
            return self.submit(bearer(self.jwt[SUBMITTER]))
        return self.owned_job

    def schedule(self, headers: dict[str, str]) -> str:
        schedule_id: str = self.ok("POST", "/api/v1/schedules", headers, json=YEARLY)["id"]
        return schedule_id

    def changeable_schedule(self, caller: Caller) -> str:
        """A schedule the caller may change if the table lets it; else submitter A's."""
        if caller.role == SUBMITTER:
            return self.schedule(self.credentials(caller, "/api/v1/"))
        if caller.role == ADMIN:
            return self.schedule(bearer(self.jwt[SUBMITTER]))
        return self.owned_schedule

    def reportable(self, caller: Caller) -> Held:
        return self.fresh_held() if caller.role in (WORKER, ADMIN) else self.held

    def executor_of(self, caller: Caller) -> str:
        return NATIVE[OTHER_WORKER] if caller.role == OTHER_WORKER else NATIVE[WORKER]

    def prepare(self) -> None:
        for role, email in EMAILS.items():
            self.add_user(email, role)
        self.add_user(OTHER_EMAIL, SUBMITTER)
        self.patch_target = self.add_user("patch-me@example.com", VIEWER)
        for role, (email, password) in LOGINS.items():
            self.jwt[role] = self.login(email, password)
        for role in (VIEWER, SUBMITTER):
            self.opaque[role] = self.live.token(role)
        for who in (WORKER, OTHER_WORKER):
            self.join[who] = self.live.token("worker")
            body = {"executor_id": NATIVE[who]}
            self.ok("POST", "/api/v1/executors", bearer(self.join[who]), json=body)
        self.bound[WORKER] = self.register_cmd_worker(CMD[WORKER], [CMD_TAG])
        self.bound[OTHER_WORKER] = self.register_cmd_worker(CMD[OTHER_WORKER], ["walk-cmd-2"])

        # submitter A's file and job; jobs leased to each worker; a finished job; an artifact
        a = bearer(self.jwt[SUBMITTER])
        files = {"file": ("input.zip", ZIP, "application/zip")}
        stored = self.ok("POST", "/api/v1/files", a, files=files)
        self.file_id, self.filename = stored["id"], stored["filename"]
        self.owned_job = self.submit(a)
        self.owned_schedule = self.schedule(a)
        self.submit(self.admin, labels=["walk-held"], input_file_id=self.file_id, lease_seconds=600)
        self.held = self.claim(WORKER, "walk-held")
        self.submit(self.admin, labels=["walk-held-2"], lease_seconds=600)
        self.other_held = self.claim(OTHER_WORKER, "walk-held-2")
        cmd_job = {"command": "true", "labels": [CMD_TAG], "fileUrl": f"/uploads/{self.file_id}/x"}
        self.cmd_held = self.ok("POST", "/api/jobs/submit", self.admin, json=cmd_job)["jobId"]
        self.jobs.add(self.cmd_held)
        headers = {"x-worker-token": self.bound[WORKER]}
        assert self.ok("GET", "/api/jobs/get-job", headers)["job"]["jobId"] == self.cmd_held
        self.submit(self.admin, labels=["walk-done"])
        done = self.claim(WORKER, "walk-done")
        report = {"executor_id": NATIVE[WORKER], "attempt": done.attempt, "exit_code": 0}
        self.ok("PUT", f"/api/v1/jobs/{done.job_id}/complete", self.admin, json=report)
        self.done_job = done.job_id
        params = {"path": "out.txt", "executor_id": NATIVE[WORKER], "attempt": self.held.attempt}
        url = f"/api/v1/jobs/{self.held.job_id}/artifacts"
        self.artifact_id = self.ok("POST", url, self.admin, params=params, content=b"out")["id"]

        # TaskDriver: three projects with a task type each of the first two; sessions of an
        # agent of the first and of the third; A's queued task; a task leased to the agent
        # and one to the worker token (the agents' project's queue is empty again)
        self.project = self.add_project("walk-agents")
        self.intake = self.add_project("walk-intake")
        self.other_project = self.add_project("walk-other")
        self.agent_type = self.add_task_type(self.project, "walk-agent-work")
        self.intake_type = self.add_task_type(self.intake, "walk-intake-work")
        self.session[AGENT] = self.agent_login(AGENT_NAME, self.project)
        self.session[OTHER_AGENT] = self.agent_login(OTHER_AGENT_NAME, self.other_project)
        self.owned_task = self.add_task(self.intake, a, OWNED_TASK)
        self.agent_held = self.add_task(self.project, self.admin)
        assert self.lease(AGENT_NAME, bearer(self.session[AGENT])) == self.agent_held
        self.worker_held = self.add_task(self.project, self.admin)
        assert self.lease(WORKER_AGENT, bearer(self.join[WORKER])) == self.worker_held

        # what exists now; the walk's allowed calls add to these ledgers, refused ones must not
        self.users = {u["id"] for u in self.ok("GET", "/api/v1/admin/users", self.admin)}
        assert len(self.users) == 5  # the configured admin and the four added above
        executors = self.ok("GET", "/api/v1/executors", self.admin)
        self.executors = {e["executor_id"] for e in executors}
        assert self.executors == {*NATIVE.values(), *CMD.values(), AGENT_NAME, WORKER_AGENT}
        jobs = self.ok("GET", "/api/v1/jobs", self.admin, params={"limit": 1000})
        assert {j["id"] for j in jobs} == self.jobs
        projects = self.ok("GET", "/api/projects", self.admin)["data"]
        assert {p["id"] for p in projects} == self.projects


Builder = Callable[[World, Caller], Call]
REQUESTS: dict[RouteKey, Builder] = {}


def request(method: str, path: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        REQUESTS[(method, path)] = builder
        return builder

    return register


def static(method: str, path: str, url: str | None = None, **kw: Any) -> None:
    """A route that needs no objects of the world."""
    REQUESTS[(method, path)] = lambda w, c: Call(method, url or path, **kw)


def bulk_item_status(answer: httpx.Response) -> int:
    errors = answer.json()["errors"]
    return int(errors[0]["code"]) if errors else answer.status_code


def results_item_status(answer: httpx.Response) -> int:
    first = answer.json()[0]
    return answer.status_code if first["ok"] else int(first["code"])


for _path in ("/api/openapi.json", "/api/docs", "/api/v1/health"):
    static("GET", _path)
static("GET", "/api/v1/jobs", params={"limit": 1})
static("GET", "/api/v1/executors")
static("GET", "/api/v1/admin/executors")
static("GET", "/api/v1/admin/stats")
static("GET", "/api/v1/metrics")
static("POST", "/api/v1/admin/tokens", json={"role": "viewer", "name": "walk"})
static("GET", "/api/v1/admin/users")
static("GET", "/api/v1/admin/tokens")
static("GET", "/api/v1/me")
static("GET", "/api/v1/me/tokens")
static("POST", "/api/v1/me/tokens", json={"name": "walk"})
static("DELETE", "/api/v1/me/tokens/{token_id}", url="/api/v1/me/tokens/no-such-token")
static("GET", "/api/workers/list")
static("GET", "/api/workers/{worker_id}", url=f"/api/workers/{CMD[WORKER]}")
static("GET", "/api/jobs/get-job")
static("GET", "/api/jobs/list", params={"limit": 1})
static("WS", "/api/jobs/stream")
static("POST", "/api/v1/files", files={"file": ("walk.zip", ZIP, "application/zip")})
static("POST", "/api/files/upload", files={"file": ("walk.zip", ZIP, "application/zip")})


@request("POST", "/api/auth/login")
def _login(w: World, c: Caller) -> Call:
    """An agent logs in with TaskDriver's body on the same path; anyone else with CMD's."""
    body: dict[str, str] = {"email": EMAILS[VIEWER], "password": PASSWORD}
    headers: dict[str, str] = {}
    if c.role == AGENT:
        body = {"agentName": f"walk-login-{next(w.seq)}", "projectId": w.project}
        headers = w.agent_credential(w.project)
    return Call("POST", "/api/auth/login", headers=headers, json=body)


def _session(path: str) -> Builder:
    def build(w: World, c: Caller) -> Call:
        if c.role in HUMANS:  # a session of its own, so the role's shared JWT lives on
            email, password = LOGINS[c.role]
            return Call("POST", path, headers=bearer(w.login(email, password)))
        if c.role == AGENT:  # likewise a session of its own, in the agents' project
            token = w.agent_login(f"walk-out-{next(w.seq)}", w.project)
            return Call("POST", path, headers=bearer(token))
        return Call("POST", path)

    return build


REQUESTS[("POST", "/api/auth/logout")] = _session("/api/auth/logout")
REQUESTS[("POST", "/api/auth/refresh")] = _session("/api/auth/refresh")


def _record_jobs(w: World, ids: Callable[[Any], list[str]]) -> Callable[[httpx.Response], None]:
    return lambda answer: w.jobs.update(ids(answer.json()))


@request("POST", "/api/v1/jobs")
def _submit(w: World, c: Caller) -> Call:
    return Call(
        "POST", "/api/v1/jobs", json=PARKED_JOB, on_success=_record_jobs(w, lambda b: [b["id"]])
    )


WALK_WORKFLOW = {"name": "walk", "jobs": [{"key": "only", **PARKED_JOB}]}


def _workflow_of(w: World, headers: dict[str, str]) -> str:
    created = w.ok("POST", "/api/v1/workflows", headers, json=WALK_WORKFLOW)
    w.jobs.update(created["jobs"].values())
    workflow_id: str = created["id"]
    return workflow_id


def _owned_workflow(w: World) -> str:
    """Submitter A's workflow, made once."""
    if not w.owned_workflow:
        w.owned_workflow = _workflow_of(w, bearer(w.jwt[SUBMITTER]))
    return w.owned_workflow


@request("GET", "/api/v1/jobs/{job_id}/dependencies")
def _dependencies(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.owned_job}/dependencies")


@request("POST", "/api/v1/workflows")
def _submit_workflow(w: World, c: Caller) -> Call:
    record = _record_jobs(w, lambda body: list(body["jobs"].values()))
    return Call("POST", "/api/v1/workflows", json=WALK_WORKFLOW, on_success=record)


@request("GET", "/api/v1/workflows")
def _list_workflows(w: World, c: Caller) -> Call:
    return Call("GET", "/api/v1/workflows")


@request("GET", "/api/v1/workflows/{workflow_id}")
def _get_workflow(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/workflows/{_owned_workflow(w)}")


@request("DELETE", "/api/v1/workflows/{workflow_id}")
def _cancel_workflow(w: World, c: Caller) -> Call:
    if c.role == SUBMITTER:  # its own, made with the very same credential
        target = _workflow_of(w, w.credentials(c, "/api/v1/"))
    elif c.role == ADMIN:  # anyone's
        target = _workflow_of(w, bearer(w.jwt[SUBMITTER]))
    else:
        target = _owned_workflow(w)
    return Call("DELETE", f"/api/v1/workflows/{target}")


@request("POST", "/api/v1/jobs/bulk")
def _submit_bulk(w: World, c: Caller) -> Call:
    record = _record_jobs(w, lambda body: [j["id"] for j in body])
    return Call("POST", "/api/v1/jobs/bulk", json=[PARKED_JOB, PARKED_JOB], on_success=record)


static("POST", "/api/v1/schedules", json=YEARLY)
static("GET", "/api/v1/schedules")


@request("POST", "/api/jobs/submit")
def _cmd_submit(w: World, c: Caller) -> Call:
    return Call(
        "POST",
        "/api/jobs/submit",
        json=PARKED_JOB,
        on_success=_record_jobs(w, lambda b: [b["jobId"]]),
    )


@request("GET", "/api/v1/jobs/{job_id}")
def _job(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.owned_job}")


@request("GET", "/api/jobs/status")
def _cmd_status(w: World, c: Caller) -> Call:
    return Call("GET", "/api/jobs/status", params={"jobId": w.owned_job})


@request("GET", "/api/v1/jobs/{job_id}/output")
def _output(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.owned_job}/output")


@request("GET", "/api/v1/jobs/{job_id}/output/follow")
def _follow(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.done_job}/output/follow")  # finished: ends at once


@request("GET", "/api/v1/jobs/{job_id}/output/interleaved")
def _interleaved(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.owned_job}/output/interleaved")


@request("POST", "/api/v1/jobs/{job_id}/resubmit")
def _resubmit(w: World, c: Caller) -> Call:
    """A parked job the caller owns (an admin: anyone's) again, as a new parked job."""
    record = _record_jobs(w, lambda b: [b["id"]])
    return Call("POST", f"/api/v1/jobs/{w.cancellable(c)}/resubmit", on_success=record)


@request("DELETE", "/api/v1/jobs/{job_id}")
def _cancel(w: World, c: Caller) -> Call:
    return Call("DELETE", f"/api/v1/jobs/{w.cancellable(c)}")


@request("GET", "/api/v1/schedules/{schedule_id}")
def _schedule(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/schedules/{w.owned_schedule}")


@request("PATCH", "/api/v1/schedules/{schedule_id}")
def _change_schedule(w: World, c: Caller) -> Call:
    url = f"/api/v1/schedules/{w.changeable_schedule(c)}"
    return Call("PATCH", url, json={"name": "walked"})


@request("DELETE", "/api/v1/schedules/{schedule_id}")
def _delete_schedule(w: World, c: Caller) -> Call:
    return Call("DELETE", f"/api/v1/schedules/{w.changeable_schedule(c)}")


@request("POST", "/api/v1/jobs/bulk/cancel")
def _bulk_cancel(w: World, c: Caller) -> Call:
    body = {"job_ids": [w.cancellable(c)]}
    return Call("POST", "/api/v1/jobs/bulk/cancel", json=body, item_status=bulk_item_status)


@request("POST", "/api/v1/jobs/claim")
def _claim(w: World, c: Caller) -> Call:
    # Every job the walk leaves waiting is labelled, or has nothing to run (a TaskDriver
    # task for an agent, which a claim that is not runnable_only would take): 204.
    body = {"executor_id": w.executor_of(c), "labels": [], "runnable_only": True}
    return Call("POST", "/api/v1/jobs/claim", json=body)


def _lease_call(path: str, method: str, fresh: bool, **extra: Any) -> Builder:
    """An executor call on a leased job: its own fresh job when it may finish it."""

    def build(w: World, c: Caller) -> Call:
        held = w.reportable(c) if fresh else w.held
        body = {"executor_id": w.executor_of(c), "attempt": held.attempt, **extra}
        return Call(method, path.format(job_id=held.job_id), json=body)

    return build


REQUESTS[("PUT", "/api/v1/jobs/{job_id}/heartbeat")] = _lease_call(
    "/api/v1/jobs/{job_id}/heartbeat", "PUT", fresh=False
)
REQUESTS[("POST", "/api/v1/jobs/{job_id}/output")] = _lease_call(
    "/api/v1/jobs/{job_id}/output", "POST", fresh=False, stream="stdout", data="walk\n"
)
REQUESTS[("PUT", "/api/v1/jobs/{job_id}/complete")] = _lease_call(
    "/api/v1/jobs/{job_id}/complete", "PUT", fresh=True, exit_code=0
)
REQUESTS[("PUT", "/api/v1/jobs/{job_id}/fail")] = _lease_call(
    "/api/v1/jobs/{job_id}/fail", "PUT", fresh=True, error_message="walk"
)
REQUESTS[("POST", "/api/v1/jobs/{job_id}/release")] = _lease_call(
    "/api/v1/jobs/{job_id}/release", "POST", fresh=True
)


@request("POST", "/api/v1/jobs/results")
def _results(w: World, c: Caller) -> Call:
    held = w.reportable(c)
    report = {
        "job_id": held.job_id,
        "executor_id": w.executor_of(c),
        "attempt": held.attempt,
        "status": "completed",
        "exit_code": 0,
    }
    return Call("POST", "/api/v1/jobs/results", json=[report], item_status=results_item_status)


@request("POST", "/api/v1/jobs/{job_id}/artifacts")
def _artifact_upload(w: World, c: Caller) -> Call:
    params = {"path": "walk/out.txt", "executor_id": w.executor_of(c), "attempt": w.held.attempt}
    url = f"/api/v1/jobs/{w.held.job_id}/artifacts"
    return Call("POST", url, params=params, content=b"artifact")


@request("GET", "/api/v1/jobs/{job_id}/artifacts")
def _artifacts(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.held.job_id}/artifacts")


@request("GET", "/api/v1/jobs/{job_id}/artifacts/{artifact_id}")
def _artifact(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/jobs/{w.held.job_id}/artifacts/{w.artifact_id}")


@request("GET", "/api/v1/files/{file_id}")
def _file(w: World, c: Caller) -> Call:
    """A worker names the job it holds: the input's own job, or (other) one without it."""
    params = None
    if c.role in (WORKER, OTHER_WORKER):
        held = w.held if c.role == WORKER else w.other_held
        params = {"job_id": held.job_id, "executor_id": w.executor_of(c), "attempt": held.attempt}
    return Call("GET", f"/api/v1/files/{w.file_id}", params=params)


@request("GET", "/api/files/download/{file_id}")
def _cmd_download(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/files/download/{w.file_id}")


@request("GET", "/uploads/{file_id}/{filename}")
def _upload_url(w: World, c: Caller) -> Call:
    return Call("GET", f"/uploads/{w.file_id}/{w.filename}")


@request("POST", "/api/v1/executors")
def _register_executor(w: World, c: Caller) -> Call:
    """A new executor id; for OTHER_WORKER the id of one the first worker registered."""
    executor_id = w.throwaway_executor() if c.role == OTHER_WORKER else f"walk-exec-{next(w.seq)}"
    body = {"executor_id": executor_id}
    return Call(
        "POST", "/api/v1/executors", json=body, on_success=lambda _: w.executors.add(executor_id)
    )


@request("POST", "/api/v1/executors/{executor_id}/heartbeat")
def _executor_heartbeat(w: World, c: Caller) -> Call:
    """Always the first worker's executor, naming the job it holds."""
    body = {"jobs": [{"job_id": w.held.job_id, "attempt": w.held.attempt}]}
    return Call("POST", f"/api/v1/executors/{NATIVE[WORKER]}/heartbeat", json=body)


@request("DELETE", "/api/v1/executors/{executor_id}")
def _deregister(w: World, c: Caller) -> Call:
    """An executor the first worker registered: its own, another's for OTHER_WORKER."""
    executor_id = w.throwaway_executor()
    gone = lambda _: w.executors.discard(executor_id)  # noqa: E731
    return Call("DELETE", f"/api/v1/executors/{executor_id}", on_success=gone)


@request("DELETE", "/api/v1/admin/tokens/{token_id}")
def _revoke_token(w: World, c: Caller) -> Call:
    body = {"role": "viewer", "name": f"walk-revoke-{next(w.seq)}"}
    token_id = w.ok("POST", "/api/v1/admin/tokens", w.admin, json=body)["id"]
    return Call("DELETE", f"/api/v1/admin/tokens/{token_id}")


@request("POST", "/api/v1/executors/{executor_id}/drain")
def _drain(w: World, c: Caller) -> Call:
    """An executor the first worker registered: its own, another's for OTHER_WORKER."""
    return Call("POST", f"/api/v1/executors/{w.throwaway_executor()}/drain")


@request("POST", "/api/v1/admin/users")
def _add_user(w: World, c: Caller) -> Call:
    body = {"email": f"walk-{next(w.seq)}@example.com", "password": PASSWORD, "role": "viewer"}
    record = lambda answer: w.users.add(answer.json()["id"])  # noqa: E731
    return Call("POST", "/api/v1/admin/users", json=body, on_success=record)


@request("PATCH", "/api/v1/admin/users/{user_id}")
def _patch_user(w: World, c: Caller) -> Call:
    return Call("PATCH", f"/api/v1/admin/users/{w.patch_target}", json={"role": "viewer"})


@request("POST", "/api/workers/register")
def _cmd_register(w: World, c: Caller) -> Call:
    """Workers register with a join token; a bound token may not register another worker."""
    worker_id = f"walk-cmd-{next(w.seq)}"
    headers = None
    if c.role == WORKER:
        headers = bearer(w.join[WORKER])
    elif c.role == OTHER_WORKER:
        worker_id = CMD[WORKER]
    body = {"workerId": worker_id, "metadata": {"tags": [PARKED]}}
    record = lambda _: w.executors.add(worker_id)  # noqa: E731
    return Call("POST", "/api/workers/register", headers=headers, json=body, on_success=record)


@request("POST", "/api/workers/heartbeat")
def _cmd_heartbeat(w: World, c: Caller) -> Call:
    return Call("POST", "/api/workers/heartbeat", json={"workerId": CMD[WORKER]})


@request("DELETE", "/api/workers/{worker_id}")
def _cmd_unregister(w: World, c: Caller) -> Call:
    """A worker removes itself (with its own token); others are asked about a throwaway."""
    worker_id = f"walk-cmd-gone-{next(w.seq)}"
    token = w.register_cmd_worker(worker_id, [PARKED])
    headers = {"x-worker-token": token} if c.role == WORKER else None
    gone = lambda _: w.executors.discard(worker_id)  # noqa: E731
    return Call("DELETE", f"/api/workers/{worker_id}", headers=headers, on_success=gone)


def _cmd_report(path: str, **extra: Any) -> Builder:
    """A worker names no worker id (its token does); anyone else names the first worker."""

    def build(w: World, c: Caller) -> Call:
        fresh = path.endswith("submit-result") and c.role in (WORKER, ADMIN)
        body: dict[str, Any] = {"jobId": w.fresh_cmd_held() if fresh else w.cmd_held, **extra}
        if c.role not in (WORKER, OTHER_WORKER):
            body["workerId"] = CMD[WORKER]
        return Call("POST", path, json=body)

    return build


REQUESTS[("POST", "/api/jobs/submit-result")] = _cmd_report(
    "/api/jobs/submit-result", exitCode=0, stdout="hi\n"
)
REQUESTS[("POST", "/api/jobs/stream-output")] = _cmd_report(
    "/api/jobs/stream-output", data="walk\n"
)


# Octaskly and monitoring


def _octaskly_created(w: World) -> Callable[[httpx.Response], None]:
    """An Octaskly task has no labels, so any claim would take it: it is cancelled at once."""

    def park(answer: httpx.Response) -> None:
        task_id = answer.json()["id"]
        w.jobs.add(task_id)
        w.ok("DELETE", f"/api/v1/jobs/{task_id}", w.admin)

    return park


@request("POST", "/api/v1/tasks")
def _octaskly_submit(w: World, c: Caller) -> Call:
    body = {"command": "echo hi", "timeout": 60}
    return Call("POST", "/api/v1/tasks", json=body, on_success=_octaskly_created(w))


@request("GET", "/api/v1/tasks/{task_id}")
def _octaskly_task(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/v1/tasks/{w.owned_job}")


@request("DELETE", "/api/v1/tasks/{task_id}")
def _octaskly_cancel(w: World, c: Caller) -> Call:
    return Call("DELETE", f"/api/v1/tasks/{w.cancellable(c)}")


static("GET", "/api/v1/tasks", params={"limit": 1})
static("GET", "/api/v1/stats")
static("GET", "/health")
static("GET", "/metrics")
static("GET", "/metrics/json")


# TaskDriver: projects and task types


def _data_id(answer: httpx.Response) -> str:
    task_id: str = answer.json()["data"]["id"]
    return task_id


static("GET", "/api/projects", params={"limit": 1})


@request("POST", "/api/projects")
def _create_project(w: World, c: Caller) -> Call:
    body = {"name": f"walk-new-{next(w.seq)}", "description": "walk"}
    record = lambda answer: w.projects.add(_data_id(answer))  # noqa: E731
    return Call("POST", "/api/projects", json=body, on_success=record)


@request("GET", "/api/projects/{project_id}")
def _project(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/projects/{w.project}")


@request("PUT", "/api/projects/{project_id}")
def _update_project(w: World, c: Caller) -> Call:
    return Call("PUT", f"/api/projects/{w.intake}", json={"description": "walked"})


@request("DELETE", "/api/projects/{project_id}")
def _delete_project(w: World, c: Caller) -> Call:
    project_id = w.add_project(f"walk-gone-{next(w.seq)}")
    gone = lambda _: w.projects.discard(project_id)  # noqa: E731
    return Call("DELETE", f"/api/projects/{project_id}", on_success=gone)


@request("GET", "/api/projects/{project_id}/stats")
def _project_stats(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/projects/{w.project}/stats")


@request("GET", "/api/projects/{project_id}/task-types")
def _task_types(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/projects/{w.project}/task-types")


@request("POST", "/api/projects/{project_id}/task-types")
def _create_task_type(w: World, c: Caller) -> Call:
    body = {"name": f"walk-type-{next(w.seq)}", "template": "do {{thing}}"}
    record = lambda answer: w.task_types.add(_data_id(answer))  # noqa: E731
    return Call("POST", f"/api/projects/{w.intake}/task-types", json=body, on_success=record)


@request("GET", "/api/task-types/{type_id}")
def _task_type(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/task-types/{w.agent_type}")


@request("PUT", "/api/task-types/{type_id}")
def _update_task_type(w: World, c: Caller) -> Call:
    return Call("PUT", f"/api/task-types/{w.intake_type}", json={"maxRetries": 2})


@request("DELETE", "/api/task-types/{type_id}")
def _delete_task_type(w: World, c: Caller) -> Call:
    type_id = w.add_task_type(w.intake, f"walk-type-gone-{next(w.seq)}")
    gone = lambda _: w.task_types.discard(type_id)  # noqa: E731
    return Call("DELETE", f"/api/task-types/{type_id}", on_success=gone)


# TaskDriver: tasks


def _record_tasks(w: World, ids: Callable[[Any], list[str]]) -> Callable[[httpx.Response], None]:
    def record(answer: httpx.Response) -> None:
        created = ids(answer.json()["data"])
        w.jobs.update(created)
        w.tasks.update(created)

    return record


@request("POST", "/api/projects/{project_id}/tasks")
def _create_task(w: World, c: Caller) -> Call:
    body = {"typeId": w.intake_type, "instructions": "walk task"}
    url = f"/api/projects/{w.intake}/tasks"
    return Call("POST", url, json=body, on_success=_record_tasks(w, lambda d: [d["id"]]))


@request("POST", "/api/projects/{project_id}/tasks/bulk")
def _create_tasks(w: World, c: Caller) -> Call:
    task = {"typeId": w.intake_type, "instructions": "walk task"}
    url = f"/api/projects/{w.intake}/tasks/bulk"
    record = _record_tasks(w, lambda d: list(d["created"]))
    return Call("POST", url, json={"tasks": [task, task]}, on_success=record)


@request("GET", "/api/projects/{project_id}/tasks")
def _tasks(w: World, c: Caller) -> Call:
    return Call("GET", f"/api/projects/{w.project}/tasks", params={"limit": 1})


@request("GET", "/api/tasks/{task_id}")
def _task(w: World, c: Caller) -> Call:
    """Agents ask for the very task the agent holds: still not theirs to read here."""
    task_id = w.agent_held if c.role in (AGENT, OTHER_AGENT) else w.owned_task
    return Call("GET", f"/api/tasks/{task_id}")


@request("PUT", "/api/tasks/{task_id}")
def _update_task(w: World, c: Caller) -> Call:
    return Call("PUT", f"/api/tasks/{w.editable(c)}", json={"instructions": "walk edited"})


@request("DELETE", "/api/tasks/{task_id}")
def _delete_task(w: World, c: Caller) -> Call:
    task_id = w.editable(c)

    def gone(_: httpx.Response) -> None:
        w.jobs.discard(task_id)
        w.tasks.discard(task_id)

    return Call("DELETE", f"/api/tasks/{task_id}", on_success=gone)


# TaskDriver: agents (the other project's agent asks under its own name: only the project
# is not its own)


@request("POST", "/api/agents/{agentName}/next-task")
def _next_task(w: World, c: Caller) -> Call:
    """The agent (or an admin for it) resumes the task it holds; the worker token its own."""
    name = {WORKER: WORKER_AGENT, OTHER_AGENT: OTHER_AGENT_NAME}.get(c.role, AGENT_NAME)
    return Call("POST", f"/api/agents/{name}/next-task", json={"projectId": w.project})


def _finish(action: str, **extra: Any) -> Builder:
    def build(w: World, c: Caller) -> Call:
        task_id, headers, name = w.fresh_agent_held(c)
        body = {**extra, **({"agentName": name} if name else {})}
        return Call("POST", f"/api/tasks/{task_id}/{action}", headers=headers, json=body)

    return build


REQUESTS[("POST", "/api/tasks/{taskId}/complete")] = _finish(
    "complete", result="done", outputs={"walk": True}
)
REQUESTS[("POST", "/api/tasks/{taskId}/fail")] = _finish("fail", error="walk", canRetry=False)


@request("POST", "/api/tasks/{taskId}/extend-lease")
def _extend_lease(w: World, c: Caller) -> Call:
    """The agent its own lease; an admin names the agent; the worker token its own lease
    (and another worker token that one)."""
    body: dict[str, Any] = {"extensionMinutes": 5}
    task_id = w.agent_held
    if c.role in (ADMIN, AGENT_TOKEN):  # its own lease: an agent's is the agent's alone
        task_id, _, body["agentName"] = w.fresh_agent_held(c)
    elif c.role in (WORKER, OTHER_WORKER):
        task_id, body["agentName"] = w.worker_held, WORKER_AGENT
    return Call("POST", f"/api/tasks/{task_id}/extend-lease", json=body)


for _action in ("cleanup-leases", "peek-next-task", "agents"):
    _template = f"/api/projects/{{projectId}}/{_action}"
    _method = "POST" if _action == "cleanup-leases" else "GET"
    REQUESTS[(_method, _template)] = lambda w, c, method=_method, action=_action: Call(
        method, f"/api/projects/{w.project}/{action}"
    )

static("GET", "/api/auth/session")
static("PUT", "/api/auth/session", json={"extendBy": 60})


# --- the walk ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key: RouteKey
    caller: Caller
    expect: Expect

    @property
    def id(self) -> str:
        method, path = self.key
        who = self.caller.role
        if who in HUMANS:
            who += f"-{self.caller.kind}"
        return f"{method} {path} [{who}]"


def _cases() -> list[Any]:
    cases: list[Case] = []
    for key, rule in POLICY.items():
        for role, expect in rule.roles().items():
            kinds = rule.kinds if role in HUMANS else (JWT,)
            cases.extend(Case(key, Caller(role, kind), expect) for kind in kinds)
    cases.sort(key=lambda case: case.key in DESTRUCTIVE)  # stable: the table's order otherwise
    params = []
    for case in cases:
        reason = KNOWN_BUGS.get((case.key, case.caller.role))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("policy-walk") / "data"
    overrides = {"admin_email": ADMIN_EMAIL, "admin_password": ADMIN_PASSWORD}
    with (
        run_server(data, login_rate_limit="off", **overrides) as live,
        httpx.Client(base_url=live.url, timeout=30) as http,
    ):
        w = World(live, http)
        w.prepare()
        yield w


def test_every_route_of_the_app_has_a_policy(tmp_path: Path) -> None:
    app = create_app(ServerSettings(data_dir=tmp_path / "data"))
    routes = app_routes(app)
    assert ("WS", "/api/jobs/stream") in routes  # the walk does see WebSockets
    assert sorted(routes - POLICY.keys()) == [], "routes without a policy in POLICY"
    assert sorted(POLICY.keys() - routes) == [], "POLICY names routes the app does not have"
    assert sorted(POLICY.keys() ^ REQUESTS.keys()) == [], "a policy row without a request"
    assert {key for key, _ in KNOWN_BUGS} <= POLICY.keys()


def _websocket_status(w: World, path: str, headers: dict[str, str]) -> int:
    url = w.live.url.replace("http://", "ws://", 1) + path
    try:
        with connect(url, additional_headers=headers, open_timeout=10):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("case", _cases())
def test_route_answers_each_role_as_the_table_says(world: World, case: Case) -> None:
    call = REQUESTS[case.key](world, case.caller)
    headers = call.headers if call.headers is not None else world.credentials(case.caller, call.url)
    if call.method == "WS":
        status, text = _websocket_status(world, call.url, headers), ""
    else:
        answer = world.send(
            call.method,
            call.url,
            headers,
            params=call.params,
            json=call.json,
            content=call.content,
            files=call.files,
        )
        status, text = answer.status_code, answer.text[:300]
        if answer.is_success and call.on_success is not None:
            call.on_success(answer)
        # Refusals on someone else's object may be per item in a bulk; a role's are not.
        if call.item_status is not None and case.caller.role in (OTHER_USER, OTHER_WORKER):
            status = call.item_status(answer) if answer.status_code == 200 else status
    assert status < 500, f"server error {status}: {text}"
    if case.expect == OK:
        assert 100 < status < 300, f"allowed, yet {status}: {text}"
    elif isinstance(case.expect, tuple):
        assert status in case.expect, f"expected one of {case.expect}, got {status}: {text}"
    elif case.expect == PASSES:
        assert status not in (401, 403), f"the policy should let it through, got {status}: {text}"
    else:
        assert status == case.expect, f"expected {case.expect}, got {status}: {text}"


def test_refused_calls_wrote_nothing(world: World) -> None:
    """After the walk the store holds what the fixtures and the allowed calls made, no more."""
    admin = world.admin
    jobs = world.send("GET", "/api/v1/jobs", admin, params={"limit": 1000})
    assert int(jobs.headers["X-Total-Count"]) == len(world.jobs)
    assert {job["id"] for job in jobs.json()} == world.jobs
    owned = world.ok("GET", f"/api/v1/jobs/{world.owned_job}", admin)
    assert (owned["status"], owned["cancel_requested"]) == ("pending", False)
    for held in (world.held, world.other_held):  # no one else finished or released them
        job = world.ok("GET", f"/api/v1/jobs/{held.job_id}", admin)
        assert (job["status"], job["attempt"]) == ("running", held.attempt)
    cmd_held = world.ok("GET", f"/api/v1/jobs/{world.cmd_held}", admin)
    assert cmd_held["status"] == "running"
    users = world.ok("GET", "/api/v1/admin/users", admin)
    assert {user["id"] for user in users} == world.users
    executors = world.ok("GET", "/api/v1/executors", admin)
    assert {e["executor_id"] for e in executors} == world.executors
    # TaskDriver: projects, the intake project's task types and tasks, A's task, the leases
    projects = world.ok("GET", "/api/projects", admin)["data"]
    assert {project["id"] for project in projects} == world.projects
    url = f"/api/projects/{world.intake}/task-types"
    assert {t["id"] for t in world.ok("GET", url, admin)["data"]} == world.task_types
    url = f"/api/projects/{world.intake}/tasks"
    tasks = world.ok("GET", url, admin, params={"limit": 1000})["data"]
    assert {task["id"] for task in tasks} == world.tasks
    owned_task = world.ok("GET", f"/api/tasks/{world.owned_task}", admin)["data"]
    assert (owned_task["status"], owned_task["instructions"]) == ("queued", OWNED_TASK)
    for task_id, holder in ((world.agent_held, AGENT_NAME), (world.worker_held, WORKER_AGENT)):
        task = world.ok("GET", f"/api/tasks/{task_id}", admin)["data"]
        assert (task["status"], task["assignedTo"]) == ("running", holder)
    agents_project = world.ok("GET", f"/api/projects/{world.project}", admin)["data"]
    assert (agents_project["status"], agents_project["agentLogin"]) == ("active", True)
    session = world.ok("GET", "/api/auth/session", bearer(world.session[AGENT]))["data"]
    assert (session["agentName"], session["projectId"]) == (AGENT_NAME, world.project)


# --- refusals come before validation (issue 11, item 25) ---------------------------------

INVALID_QUERY = {"limit": "-1", "offset": "-1", "status": "no-such-status", "stream": "x"}


OBJECT_LEVEL = (OTHER_USER, OTHER_WORKER, OTHER_AGENT)


def _refusal_cases() -> list[Any]:
    """Every (route, caller) the table refuses with 401 or 403 for the caller's role, but
    for WebSockets. The refusals of ``other_*`` callers are about an object the request
    names, often in its body (a worker id, an agent name, a project, job ids), which can
    only be read once the body is valid: those are checked in the services, after it."""
    params = []
    for case in (c.values[0] for c in _cases()):
        refused = isinstance(case.expect, int) and case.expect in (401, 403)
        if refused and case.key[0] != "WS" and case.caller.role not in OBJECT_LEVEL:
            params.append(pytest.param(case, id=case.id))
    return params


def test_item25_every_authenticated_route_names_its_right(tmp_path: Path) -> None:
    """The early gate (``api/route_rights.py``) knows every route that needs a caller."""
    app = create_app(ServerSettings(data_dir=tmp_path / "data"))
    own_principal = {("POST", "/api/auth/logout"), ("POST", "/api/auth/refresh")}
    needs_caller = {
        key for key, rule in POLICY.items() if rule.anonymous != OK and key not in own_principal
    }
    assert sorted(needs_caller - RIGHTS.keys()) == []
    assert sorted(RIGHTS.keys() - app_routes(app)) == []


@pytest.mark.parametrize("case", _refusal_cases())
def test_item25_a_refusal_comes_before_any_validation(world: World, case: Case) -> None:
    """The same caller with a body and a query that break every rule still gets the
    table's 401 or 403, never a 400 or 422 that would tell it what the route expects."""
    call = REQUESTS[case.key](world, case.caller)
    headers = call.headers if call.headers is not None else world.credentials(case.caller, call.url)
    answer = world.send(
        call.method,
        call.url,
        headers,
        params={**(call.params or {}), **INVALID_QUERY},
        json=[] if call.method in ("POST", "PUT", "PATCH") else None,
    )
    assert answer.status_code == case.expect, f"{answer.status_code}: {answer.text[:300]}"
    if call.method in ("POST", "PUT", "PATCH"):  # a body that is not even JSON
        not_json = {**headers, "Content-Type": "application/json"}
        answer = world.send(call.method, call.url, not_json, content=b'{"broken')
        assert answer.status_code == case.expect, f"{answer.status_code}: {answer.text[:300]}"
