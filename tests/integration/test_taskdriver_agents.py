"""TaskDriver's agents over real HTTP: sessions, next-task, complete/fail, leases, views.

Projects and tasks are written straight into the server's SQLite file, so these
tests depend on nothing but the agent-facing routes they exercise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.domain.jobs import JobSpec, NewJob
from corral.domain.projects import Project, ProjectStatus
from corral.store.sqlite.store import SqliteStore
from tests.live import LiveServer, run_server


def _on_store(live: LiveServer, work: Any) -> Any:
    async def run() -> Any:
        store = SqliteStore(live.settings.sqlite_path)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def make_project(
    live: LiveServer, *, status: ProjectStatus = ProjectStatus.ACTIVE, agent_login: bool = True
) -> str:
    now = time.time()
    project = Project(
        id=str(uuid.uuid4()),
        name=f"p-{uuid.uuid4().hex[:10]}",
        created_at=now,
        updated_at=now,
        status=status,
        agent_login=agent_login,
    )
    _on_store(live, lambda store: store.create_project(project))
    return project.id


def add_tasks(
    live: LiveServer,
    project_id: str,
    count: int = 1,
    *,
    lease_seconds: float = 600.0,
    max_retries: int = 3,
) -> list[str]:
    now = time.time()
    jobs = [
        NewJob(
            id=str(uuid.uuid4()),
            spec=JobSpec(type="taskdriver", instructions=f"task {n}", variables={"n": n}),
            priority=0,
            owner_id="test",
            created_at=now + n * 1e-3,
            max_retries=max_retries,
            lease_seconds=lease_seconds,
            project_id=project_id,
        )
        for n in range(count)
    ]
    _on_store(live, lambda store: store.insert_jobs(jobs))
    return [job.id for job in jobs]


_AGENT_TOKENS: dict[tuple[str, str], str] = {}


def agent_token(live: LiveServer, project_id: str, *, fresh: bool = False) -> str:
    """An agent token of the project, minted through the admin API (one per project and
    server unless ``fresh``: sessions earned with the same token share their leases)."""
    key = (live.url, project_id)
    if not fresh and key in _AGENT_TOKENS:
        return _AGENT_TOKENS[key]
    body = {"role": "agent", "name": "agents", "project_id": project_id}
    with live.client() as admin:
        answer = admin.post("/api/v1/admin/tokens", json=body)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["token"]
    if not fresh:
        _AGENT_TOKENS[key] = token
    return token


def login(live: LiveServer, agent: str, project_id: str, token: str | None = "") -> httpx.Response:
    """The document's login plus its one added header: the project's agent token by
    default, ``token`` when given, and no credential at all when ``token`` is None."""
    if token == "":
        known = _AGENT_TOKENS.get((live.url, project_id))
        token = known or (agent_token(live, project_id) if _exists(live, project_id) else "x")
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live.url, timeout=30) as http:
        body = {"agentName": agent, "projectId": project_id}
        return http.post("/api/auth/login", json=body, headers=headers)


def _exists(live: LiveServer, project_id: str) -> bool:
    return _on_store(live, lambda store: store.get_project(project_id)) is not None


def agent_client(live: LiveServer, agent: str, project_id: str) -> httpx.Client:
    answer = login(live, agent, project_id)
    assert answer.status_code == 200, answer.text
    return live.client(answer.json()["data"]["token"])


def td_error(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert body["success"] is False
    assert {"error", "timestamp", "correlationId"} <= body.keys()
    return body


def next_task(http: httpx.Client, agent: str, project_id: str) -> dict[str, Any]:
    answer = http.post(f"/api/agents/{agent}/next-task", json={"projectId": project_id})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def seconds_until(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - time.time()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data") as live:
        yield live


# --- logins and sessions ------------------------------------------------------------------
def test_login_answers_the_documented_session(server: LiveServer) -> None:
    project = make_project(server)
    answer = login(server, "agent.one_1", project)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    assert set(body["data"]) == {"sessionId", "token", "expiresAt"}
    assert 3 * 3600 - 60 < seconds_until(body["data"]["expiresAt"]) <= 3 * 3600
    with server.client(body["data"]["token"]) as http:
        info = http.get("/api/auth/session")
    assert info.status_code == 200, info.text
    data = info.json()["data"]
    assert data["sessionId"] == body["data"]["sessionId"]
    assert (data["agentName"], data["projectId"]) == ("agent.one_1", project)
    assert {"createdAt", "expiresAt", "lastActivity"} <= data.keys()


def test_login_refusals_never_say_which(server: LiveServer) -> None:
    closed = make_project(server, status=ProjectStatus.CLOSED)
    no_agents = make_project(server, agent_login=False)
    for project in (str(uuid.uuid4()), closed, no_agents):
        body = td_error(login(server, "bot", project), 401)
        assert body["error"] == "Invalid agent login"
    open_project = make_project(server)
    bad_name = td_error(login(server, "bad name!", open_project), 422)
    assert bad_name["validationDetails"][0]["field"] == "agentName"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        missing = td_error(http.post("/api/auth/login", json={"agentName": "bot"}), 422)
    assert missing["validationDetails"][0]["field"] == "projectId"


def test_item19_refused_agent_logins_spend_the_addresss_login_budget(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", login_ip_rate_limit="2/minute") as live:
        project = make_project(live)
        for _ in range(3):  # successful logins give their unit back
            assert login(live, "bot", project).status_code == 200
        td_error(login(live, "bot", project, "crl_guess-1"), 401)
        td_error(login(live, "bot", project, "crl_guess-2"), 401)
        refused = td_error(login(live, "bot", project), 429)  # even with the right token
        assert refused["error"] == "Rate limit exceeded"


def test_extend_session_and_logout(server: LiveServer) -> None:
    project = make_project(server)
    with agent_client(server, "bot", project) as http:
        before = http.get("/api/auth/session").json()["data"]["expiresAt"]
        longer = http.put("/api/auth/session", json={"extendBy": 3600})
        assert longer.status_code == 200, longer.text
        after = longer.json()["data"]["expiresAt"]
        assert 3599 < seconds_until(after) - seconds_until(before) < 3601
        td_error(http.put("/api/auth/session", json={"extendBy": 0}), 422)
        out = http.post("/api/auth/logout")
        assert out.status_code == 200, out.text
        assert out.json()["success"] is True
        assert out.json()["data"]["loggedOut"] is True
        td_error(http.get("/api/auth/session"), 401)
        td_error(http.post("/api/agents/bot/next-task", json={"projectId": project}), 401)


def test_session_endpoints_need_an_agent_session(server: LiveServer) -> None:
    with server.client() as http:
        td_error(http.get("/api/auth/session"), 403)


def test_a_session_is_confined_to_its_project_and_agent(server: LiveServer) -> None:
    mine, other = make_project(server), make_project(server)
    add_tasks(server, other)
    with agent_client(server, "bot", mine) as http:
        td_error(http.post("/api/agents/bot/next-task", json={"projectId": other}), 403)
        td_error(http.get(f"/api/projects/{other}/peek-next-task"), 403)
        td_error(http.post("/api/agents/someone-else/next-task", json={"projectId": mine}), 403)
        # User endpoints of the other dialects are closed to it.
        assert http.post("/api/jobs/submit", json={"command": "echo hi"}).status_code == 403
        assert http.get("/api/v1/jobs").status_code == 403
        td_error(http.get("/metrics/json"), 403)
        # So are their executor endpoints: a project id must not buy other projects'
        # tasks, or anyone's jobs, through the executor-queue API.
        with server.client() as admin:
            admin.post("/api/v1/jobs", json={"command": "echo hi"}).raise_for_status()
        claim = http.post("/api/v1/jobs/claim", json={"executor_id": "bot"})
        assert claim.status_code == 403, claim.text
        assert http.get("/api/v1/tasks").status_code == 403
    with server.client() as admin:
        assert admin.get("/api/v1/jobs", params={"status": "running"}).json() == []


# --- next task, complete, fail -----------------------------------------------------------
def test_next_task_resumes_the_held_task_and_others_get_the_next(server: LiveServer) -> None:
    project = make_project(server)
    first, second = add_tasks(server, project, 2)
    with (
        agent_client(server, "alpha", project) as alpha,
        agent_client(server, "beta", project) as beta,
    ):
        got = next_task(alpha, "alpha", project)
        assert got["success"] is True
        data = got["data"]
        assert data["id"] == data["task"]["id"] == first
        assert data["agentName"] == "alpha"
        task = data["task"]
        assert (task["status"], task["assignedTo"], task["projectId"]) == (
            "running",
            "alpha",
            project,
        )
        assert task["instructions"] == "task 0" and task["variables"] == {"n": 0}
        again = next_task(alpha, "alpha", project)["data"]
        assert again["id"] == first  # resumed, not a second lease
        assert next_task(beta, "beta", project)["data"]["id"] == second
        # A new session of the same agent name resumes too: the name is the identity.
        with agent_client(server, "alpha", project) as alpha_again:
            assert next_task(alpha_again, "alpha", project)["data"]["id"] == first


def test_no_task_answer(server: LiveServer) -> None:
    project = make_project(server)
    with agent_client(server, "bot", project) as http:
        body = next_task(http, "bot", project)
    assert body == {
        "success": False,
        "error": "No tasks available for assignment",
        "data": {"task": None, "agentName": "bot"},
    }


def test_complete_stores_result_and_outputs(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    with agent_client(server, "bot", project) as http:
        next_task(http, "bot", project)
        outputs = {"critical_count": 3, "report_url": "https://example.com/r"}
        done = http.post(
            f"/api/tasks/{task_id}/complete", json={"result": "ok", "outputs": outputs}
        )
        assert done.status_code == 200, done.text
        assert done.json()["data"]["status"] == "completed"
        assert done.json()["data"]["result"] == {"result": "ok", "outputs": outputs}
        td_error(http.post(f"/api/tasks/{task_id}/complete", json={"result": "again"}), 409)
        assert next_task(http, "bot", project)["success"] is False


def test_fail_with_retry_requeues_until_retries_run_out(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project, max_retries=1)
    with agent_client(server, "bot", project) as http:
        next_task(http, "bot", project)
        failed = http.post(f"/api/tasks/{task_id}/fail", json={"error": "flaky", "canRetry": True})
        assert failed.status_code == 200, failed.text
        assert failed.json()["data"]["status"] == "queued"
        deadline = time.monotonic() + 10  # the retry waits out a ~1 s backoff
        while (got := next_task(http, "bot", project))["success"] is False:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert got["data"]["id"] == task_id
        final = http.post(f"/api/tasks/{task_id}/fail", json={"error": "again", "canRetry": True})
        assert final.json()["data"]["status"] == "failed"
        assert final.json()["data"]["error"] == "again"


def test_fail_without_retry_fails_at_once(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    with agent_client(server, "bot", project) as http:
        next_task(http, "bot", project)
        body = {"error": "bad input", "canRetry": False}
        assert http.post(f"/api/tasks/{task_id}/fail", json=body).json()["data"]["status"] == (
            "failed"
        )


def test_item16_only_the_holder_reports(server: LiveServer) -> None:
    project = make_project(server)
    [task_id, spare] = add_tasks(server, project, 2)
    other_credential = agent_token(server, project, fresh=True)
    with (
        agent_client(server, "alpha", project) as alpha,
        agent_client(server, "beta", project) as beta,
        server.client() as admin,
    ):
        next_task(alpha, "alpha", project)
        td_error(beta.post(f"/api/tasks/{task_id}/complete", json={"result": "x"}), 409)
        td_error(
            beta.post(f"/api/tasks/{task_id}/complete", json={"agentName": "alpha"}),
            403,
        )
        # An admin acts for a named agent, and must name it; but the lease is alpha's.
        td_error(admin.post(f"/api/tasks/{task_id}/complete", json={"result": "x"}), 422)
        td_error(admin.post(f"/api/tasks/{task_id}/complete", json={"agentName": "alpha"}), 403)
        # Logging in under alpha's name with another credential resumes nothing, and its
        # reports on alpha's task are someone else's: 403, and nothing changes.
        answer = login(server, "alpha", project, other_credential)
        assert answer.status_code == 200, answer.text
        with server.client(answer.json()["data"]["token"]) as impostor:
            assert next_task(impostor, "alpha", project)["data"]["id"] == spare
            for action, body in (
                ("complete", {"result": "stolen"}),
                ("fail", {"error": "stolen", "canRetry": False}),
                ("extend-lease", {"extensionMinutes": 60}),
            ):
                td_error(impostor.post(f"/api/tasks/{task_id}/{action}", json=body), 403)
        # A session earned with alpha's own credential resumes and finishes it.
        with agent_client(server, "alpha", project) as alpha_again:
            assert next_task(alpha_again, "alpha", project)["data"]["id"] == task_id
        done = alpha.post(f"/api/tasks/{task_id}/complete", json={"result": "mine"})
        assert done.status_code == 200, done.text
        assert done.json()["data"]["result"]["result"] == "mine"


def test_item16_an_agent_cannot_finish_a_task_running_on_a_corral_worker(
    server: LiveServer,
) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    worker = server.token("worker")
    with server.client(worker) as http:
        body = {"executor_id": "w-1", "project_id": project}
        claimed = http.post("/api/v1/jobs/claim", json=body)
        assert claimed.status_code == 200, claimed.text
        assert claimed.json()["id"] == task_id
    with agent_client(server, "w-1", project) as impostor:
        assert next_task(impostor, "w-1", project)["success"] is False  # nothing resumed
        for action, body in (
            ("complete", {"result": "stolen"}),
            ("extend-lease", {"extensionMinutes": 60}),
        ):
            td_error(impostor.post(f"/api/tasks/{task_id}/{action}", json=body), 403)
    with server.client() as admin:
        assert admin.get(f"/api/tasks/{task_id}").json()["data"]["status"] == "running"


def test_item16_login_must_be_earned(server: LiveServer) -> None:
    """No credential, a wrong one, a foreign project's agent token, a worker token or a
    session token: the same 401 in TaskDriver's shape. An admin's token opens any."""
    project, other = make_project(server), make_project(server)
    foreign = agent_token(server, other)
    with server.client() as admin:
        session = admin.post(
            "/api/auth/login", json={"agentName": "a", "projectId": project}
        ).json()["data"]["token"]
    for token in (None, "crl_nonsense", "a.b.c", foreign, server.token("worker"), session):
        body = td_error(login(server, "bot", project, token), 401)
        assert body["error"] == "Invalid agent login"
    for token in (agent_token(server, project), server.admin_token):
        assert login(server, "bot", project, token).status_code == 200


def test_item16_an_admin_may_open_a_projects_agent_login(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    td_error(login(server, "bot", project, None), 401)
    with server.client() as admin:
        opened = admin.put(f"/api/projects/{project}", json={"openAgentLogin": True})
    assert opened.status_code == 200, opened.text
    assert opened.json()["data"]["openAgentLogin"] is True
    with server.client(server.token("submitter")) as submitter:
        refused = submitter.put(f"/api/projects/{project}", json={"openAgentLogin": False})
        td_error(refused, 403)
    answer = login(server, "bot", project, None)
    assert answer.status_code == 200, answer.text
    with server.client(answer.json()["data"]["token"]) as bot:
        assert next_task(bot, "bot", project)["data"]["id"] == task_id
    # An open login's lease is its own session's: another open login of the name
    # neither resumes nor reports on it.
    again = login(server, "bot", project, None).json()["data"]["token"]
    with server.client(again) as other:
        assert next_task(other, "bot", project)["success"] is False
        td_error(other.post(f"/api/tasks/{task_id}/complete", json={"result": "x"}), 403)


# --- leases ---------------------------------------------------------------------------------
def test_extend_lease(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project, lease_seconds=60)
    with agent_client(server, "bot", project) as http:
        held = next_task(http, "bot", project)["data"]["task"]
        assert seconds_until(held["leaseExpiresAt"]) < 61
        longer = http.post(f"/api/tasks/{task_id}/extend-lease", json={"extensionMinutes": 30})
        assert longer.status_code == 200, longer.text
        assert 1790 < seconds_until(longer.json()["data"]["leaseExpiresAt"]) <= 1800
        # Resuming never shortens an extended lease.
        resumed = next_task(http, "bot", project)["data"]["task"]
        assert seconds_until(resumed["leaseExpiresAt"]) > 1780
        for bad in (0, 1441):
            body = {"extensionMinutes": bad}
            td_error(http.post(f"/api/tasks/{task_id}/extend-lease", json=body), 422)


def test_an_agent_that_stops_extending_loses_its_task(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", reaper_interval=0.2, lease_grace=0.0) as live:
        project = make_project(live)
        [task_id] = add_tasks(live, project, lease_seconds=1.2)
        with (
            agent_client(live, "slow", project) as slow,
            agent_client(live, "quick", project) as quick,
        ):
            assert next_task(slow, "slow", project)["data"]["id"] == task_id
            deadline = time.monotonic() + 15
            while (got := next_task(quick, "quick", project))["success"] is False:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert got["data"]["id"] == task_id
            late = slow.post(f"/api/tasks/{task_id}/complete", json={"result": "late"})
            td_error(late, 409)
            done = quick.post(f"/api/tasks/{task_id}/complete", json={"result": "on time"})
            assert done.status_code == 200, done.text


def test_cleanup_leases_counts_what_it_reclaims(server: LiveServer) -> None:
    project, other = make_project(server), make_project(server)
    add_tasks(server, project, 3, lease_seconds=1)
    add_tasks(server, other, 1, lease_seconds=1)
    with server.client() as admin:
        for agent in ("a1", "a2"):
            next_task(admin, agent, project)
        next_task(admin, "a1", project)  # resumes: still two tasks held
        next_task(admin, "a3", other)
        time.sleep(1.2)
        answer = admin.post(f"/api/projects/{project}/cleanup-leases")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"success": True, "data": {"reclaimedTasks": 2, "cleanedAgents": 2}}
        again = admin.post(f"/api/projects/{project}/cleanup-leases").json()["data"]
        assert again == {"reclaimedTasks": 0, "cleanedAgents": 0}
        td_error(admin.post(f"/api/projects/{uuid.uuid4()}/cleanup-leases"), 404)


# --- views ------------------------------------------------------------------------------------
def test_peek_and_active_agents(server: LiveServer) -> None:
    project = make_project(server)
    first, _, _ = add_tasks(server, project, 3)
    with agent_client(server, "bot", project) as http:
        peek = http.get(f"/api/projects/{project}/peek-next-task")
        assert peek.json() == {"success": True, "data": {"projectId": project, "tasksAvailable": 3}}
        next_task(http, "bot", project)
        assert (
            http.get(f"/api/projects/{project}/peek-next-task").json()["data"]["tasksAvailable"]
            == 2
        )
        agents = http.get(f"/api/projects/{project}/agents")
    assert agents.status_code == 200, agents.text
    [row] = agents.json()["data"]
    assert set(row) == {"agentName", "taskId", "assignedAt", "leaseExpiresAt", "status"}
    assert (row["agentName"], row["taskId"], row["status"]) == ("bot", first, "running")
    with server.client(server.token("viewer")) as viewer:
        assert viewer.get(f"/api/projects/{project}/agents").status_code == 200
        td_error(viewer.post("/api/agents/bot/next-task", json={"projectId": project}), 403)


def test_metrics_json_shape(server: LiveServer) -> None:
    project = make_project(server)
    login(server, "bot", project)
    with server.client() as http:
        answer = http.get("/metrics/json")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True
    data = body["data"]
    assert set(data) == {
        "requests_total",
        "requests_success",
        "requests_error",
        "response_time_avg",
        "active_sessions",
        "system",
    }
    assert data["active_sessions"] == 1
    assert set(data["system"]) == {"memory_usage", "cpu_usage", "uptime"}
    assert data["system"]["memory_usage"] > 0
    assert data["requests_total"] >= 1 and data["requests_success"] >= 1  # the login


def test_item25_an_agent_reads_its_own_project_and_nothing_else(server: LiveServer) -> None:
    """TaskDriver tells agents to read the project's instructions before every task."""
    with server.client() as admin:
        mine = admin.post("/api/projects", json={"name": "mine", "instructions": "be careful"})
        other = admin.post("/api/projects", json={"name": "other"})
        mine_id, other_id = mine.json()["data"]["id"], other.json()["data"]["id"]
        kinds = [
            admin.post(f"/api/projects/{p}/task-types", json={"name": "t"}).json()["data"]["id"]
            for p in (mine_id, other_id)
        ]
    for credential in ("session", "token"):
        with (
            agent_client(server, "bot", mine_id)
            if credential == "session"
            else server.client(agent_token(server, mine_id))
        ) as http:
            project = http.get(f"/api/projects/{mine_id}")
            assert project.status_code == 200, project.text
            assert project.json()["data"]["instructions"] == "be careful"
            assert http.get(f"/api/projects/{mine_id}/stats").status_code == 200
            [listed] = http.get(f"/api/projects/{mine_id}/task-types").json()["data"]
            assert listed["id"] == kinds[0]
            assert http.get(f"/api/task-types/{kinds[0]}").status_code == 200
            for path in (
                f"/api/projects/{other_id}",
                f"/api/projects/{other_id}/stats",
                f"/api/projects/{other_id}/task-types",
                f"/api/task-types/{kinds[1]}",
                "/api/projects",
            ):
                td_error(http.get(path), 403)
            # Never a write, and the refusal comes before the body is even looked at.
            td_error(http.post("/api/projects", json={}), 403)
            td_error(http.put(f"/api/projects/{mine_id}", json={"status": "bogus"}), 403)
            td_error(http.post(f"/api/projects/{mine_id}/task-types", json=[]), 403)
