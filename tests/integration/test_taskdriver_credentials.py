"""Agent tokens (issue 11, item 20): bound to one project, good only on that project's
agent routes and agent logins, and fenced like a session: the leases they take are
theirs alone."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_taskdriver_agents import (
    add_tasks,
    agent_token,
    login,
    make_project,
    next_task,
    td_error,
)
from tests.live import LiveServer, run_server

CORRAL = [sys.executable, "-m", "corral.cli.main"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data") as live:
        yield live


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, *args], capture_output=True, text=True, timeout=60)


def test_item20_agent_tokens_need_a_project(server: LiveServer) -> None:
    project = make_project(server)
    with server.client() as admin:
        for body in (
            {"role": "agent", "name": "a"},
            {"role": "agent", "name": "a", "project_id": "no-such-project"},
            {"role": "viewer", "name": "v", "project_id": project},
        ):
            answer = admin.post("/api/v1/admin/tokens", json=body)
            assert answer.status_code == 400, answer.text
            assert answer.json()["context"]["field"] == "project_id"
        made = admin.post(
            "/api/v1/admin/tokens", json={"role": "agent", "name": "a", "project_id": project}
        )
    assert made.status_code == 201, made.text
    assert made.json()["project_id"] == project
    assert made.json()["token"].startswith("crl_")


def test_item20_corral_token_create_binds_an_agent_token_to_its_project(
    server: LiveServer,
) -> None:
    project = make_project(server)
    data = str(server.settings.data_dir)
    unbound = cli("token", "create", "--role", "agent", "--data-dir", data)
    assert unbound.returncode == 2 and "project_id" in unbound.stderr
    minted = cli("token", "create", "--role", "agent", "--project", project, "--data-dir", data)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    assert login(server, "bot", project, token).status_code == 200
    listed = cli("token", "list", "--data-dir", data).stdout
    assert f"agent\tactive\tproject {project}" in listed


def test_item20_an_agent_token_is_good_only_on_its_projects_agent_routes(
    server: LiveServer,
) -> None:
    project, other = make_project(server), make_project(server)
    [mine] = add_tasks(server, project)
    add_tasks(server, other)
    with server.client() as admin:
        admin.post("/api/v1/jobs", json={"command": "echo hi"}).raise_for_status()
    with server.client(agent_token(server, project)) as http:
        # Its own project's agent routes.
        assert next_task(http, "bot", project)["data"]["id"] == mine
        assert http.get(f"/api/projects/{project}/peek-next-task").status_code == 200
        # Never another project, nor the other dialects' executor or user routes.
        td_error(http.post("/api/agents/bot/next-task", json={"projectId": other}), 403)
        td_error(http.get(f"/api/projects/{other}/peek-next-task"), 403)
        assert http.post("/api/v1/jobs/claim", json={"executor_id": "bot"}).status_code == 403
        assert http.get("/api/jobs/get-job").status_code in (401, 403)
        assert http.get("/api/v1/jobs").status_code == 403
        assert http.post("/api/jobs/submit", json={"command": "echo"}).status_code == 403
        assert http.get("/api/v1/tasks").status_code == 403
        td_error(http.post("/api/projects", json={"name": "nope"}), 403)
        td_error(http.get("/api/auth/session"), 403)
    with server.client() as admin:
        running = admin.get("/api/v1/jobs", params={"status": "running"}).json()
    assert [job["id"] for job in running] == [mine]


def test_item20_an_agent_tokens_leases_are_fenced_like_a_sessions(server: LiveServer) -> None:
    project = make_project(server)
    [task_id] = add_tasks(server, project)
    holder = agent_token(server, project)
    stranger = agent_token(server, project, fresh=True)
    with server.client(holder) as http:
        assert next_task(http, "bot", project)["data"]["id"] == task_id
    with server.client(stranger) as http:
        assert next_task(http, "bot", project)["success"] is False  # nothing to resume
        body = {"agentName": "bot", "result": "stolen"}
        td_error(http.post(f"/api/tasks/{task_id}/complete", json=body), 403)
        extend = {"agentName": "bot", "extensionMinutes": 30}
        td_error(http.post(f"/api/tasks/{task_id}/extend-lease", json=extend), 403)
        late = {"agentName": "someone", "result": "late"}
        td_error(http.post(f"/api/tasks/{task_id}/complete", json=late), 409)
    # A session earned with the holding token is the same holder: it resumes and reports.
    session = login(server, "bot", project, holder).json()["data"]["token"]
    with server.client(session) as http:
        assert next_task(http, "bot", project)["data"]["id"] == task_id
        done = http.post(f"/api/tasks/{task_id}/complete", json={"result": "ok"})
    assert done.status_code == 200, done.text


def test_item20_revoking_an_agent_token_ends_the_sessions_it_opened(server: LiveServer) -> None:
    project = make_project(server)
    with server.client() as admin:
        body = {"role": "agent", "name": "leaked", "project_id": project}
        made = admin.post("/api/v1/admin/tokens", json=body).json()
    session = login(server, "bot", project, made["token"]).json()["data"]["token"]
    with server.client(session) as http:
        assert http.get("/api/auth/session").status_code == 200
        data = str(server.settings.data_dir)
        assert cli("token", "revoke", made["id"], "--data-dir", data).returncode == 0
        td_error(http.get("/api/auth/session"), 401)  # at once: sessions are read each time
        td_error(http.post("/api/agents/bot/next-task", json={"projectId": project}), 401)
