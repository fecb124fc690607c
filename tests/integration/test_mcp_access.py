"""Issue 18: scoped access on Corral's MCP face. The tool list a token receives omits
what it may not call, refusals are tool results flagged ``isError`` with a clear text,
and ``/mcp`` takes the same Bearer tokens and rate limits as every HTTP face."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.mcp_harness import (
    TRANSPORTS,
    Connect,
    Dispatcher,
    call,
    connector,
    http_session,
    make_project,
    refused,
    run_dispatcher,
    stdio_session,
    tool_names,
)
from tests.processes import CORRAL, clean_env

RATE = 40  # requests a minute per principal on this module's server

READ_TOOLS = {
    "list_projects",
    "get_project",
    "list_task_types",
    "get_task_type",
    "list_tasks",
    "get_task",
    "peek_next_task",
    "list_active_agents",
    "get_project_stats",
    "get_lease_stats",
    "health_check",
    "get_job",
    "wait_for_job",
    "tail_output",
    "list_jobs",
    "list_workers",
}
AGENT_TOOLS = {
    "list_projects",
    "get_project",
    "list_task_types",
    "get_task_type",
    "get_project_stats",
    "get_next_task",
    "peek_next_task",
    "complete_task",
    "fail_task",
    "extend_task_lease",
    "extend_lease",
    "list_active_agents",
    "get_lease_stats",
    "cleanup_expired_leases",
    "health_check",
}


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatcher]:
    root = tmp_path_factory.mktemp("mcp-access")
    with run_dispatcher(root, CORRAL_RATE_LIMIT=f"{RATE}/minute") as running:
        yield running


@pytest.fixture(params=TRANSPORTS)
def connect(request: pytest.FixtureRequest, dispatcher: Dispatcher) -> Connect:
    return connector(dispatcher, request.param)


async def test_item18_the_tool_list_a_token_receives_omits_what_it_may_not_call(
    dispatcher: Dispatcher, connect: Connect, request: pytest.FixtureRequest
) -> None:
    async with connect(dispatcher.admin) as admin:
        everything = await tool_names(admin)
        project_id, _ = await make_project(admin, f"scoped-{request.node.callspec.id}")
    assert len(everything) == 30 and everything > READ_TOOLS | AGENT_TOOLS
    viewer, agent = dispatcher.token("viewer"), dispatcher.token("agent", project_id)
    async with connect(viewer) as as_viewer, connect(agent) as as_agent:
        assert await tool_names(as_viewer) == READ_TOOLS
        assert await tool_names(as_agent) == AGENT_TOOLS
        assert [p.name for p in (await as_agent.list_prompts()).prompts] == ["work_queue"]
        assert (await as_viewer.list_prompts()).prompts == []
        text = await refused(as_viewer, "submit_command", command="echo no")
        assert text.endswith("forbidden: role viewer may not call submit_command"), text
        assert "jobs" in await call(as_viewer, "list_jobs")


async def test_item18_an_agent_token_sees_only_its_own_project(dispatcher: Dispatcher) -> None:
    async with http_session(dispatcher)(dispatcher.admin) as admin:
        mine, _ = await make_project(admin, "agent-mine")
        await make_project(admin, "agent-other")
    async with http_session(dispatcher)(dispatcher.token("agent", mine)) as agent:
        projects = await call(agent, "list_projects")
        assert [p["id"] for p in projects] == [mine]
        for tool in ("get_project", "get_next_task", "peek_next_task"):
            text = await refused(agent, tool, projectId="agent-other")
            assert "forbidden" in text and "project" in text, text
        assert "forbidden" in await refused(agent, "list_tasks", projectId=mine)


async def test_item18_failures_are_tool_results_that_say_what_is_wrong(
    dispatcher: Dispatcher,
) -> None:
    with dispatcher.http() as http:
        body = {"command": "true", "secret_env": {"API_KEY": "hunter2"}, "labels": ["nowhere"]}
        job_id = http.post("/api/v1/jobs", json=body).raise_for_status().json()["id"]
    async with http_session(dispatcher)(dispatcher.admin) as admin:
        job = await call(admin, "get_job", jobId=job_id)
        assert "hunter2" not in str(job) and "API_KEY" in job["secret_env"]
        cases = {
            ("get_job", "jobId", "no-such-job"): "not found: job not found",
            ("wait_for_job", "timeout", 61): "invalid argument: timeout must be between 0 and 60",
            ("tail_output", "lines", 0): "invalid argument: lines must be 1-1000",
            ("list_tasks", "limit", 0): "invalid argument: limit must be",
        }
        for (tool, key, value), expected in cases.items():
            arguments = {"jobId": job_id, "projectId": "agent-mine", key: value}
            assert expected in await refused(admin, tool, **arguments)
        typed = await refused(admin, "get_next_task", projectId=["not", "a", "string"])
        assert "invalid argument: projectId: Input should be a valid string" in typed, typed
        assert "pydantic" not in typed and "Traceback" not in typed
        waited = await call(admin, "wait_for_job", jobId=job_id, timeout=0.2)
        assert waited["finished"] is False and waited["status"] == "pending"
        cancelled = await call(admin, "cancel_job", jobId=job_id)
        assert cancelled["status"] == "cancelled"
        done = await call(admin, "wait_for_job", jobId=job_id, timeout=5)
        assert done["finished"] is True


def test_item18_mcp_takes_bearer_tokens_and_the_same_rate_limits(dispatcher: Dispatcher) -> None:
    endpoint = dispatcher.url + "/mcp"
    missing = httpx.post(endpoint, json={})
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert "bearer" in missing.json()["error"].lower()
    assert httpx.get(endpoint).status_code == 405  # no idle stream to hold a server's stop
    assert (
        httpx.post(endpoint, json={}, headers={"Authorization": "Bearer crl_x"}).status_code == 401
    )
    headers = {"Authorization": f"Bearer {dispatcher.token('viewer')}"}
    answers = [httpx.post(endpoint, json={}, headers=headers) for _ in range(RATE + 1)]
    assert [a.status_code for a in answers[:RATE]].count(429) == 0
    assert answers[-1].status_code == 429 and int(answers[-1].headers["retry-after"]) >= 1
    assert answers[0].headers["x-ratelimit-limit"] == str(RATE)


def test_item18_corral_mcp_refuses_a_bad_token_at_start(dispatcher: Dispatcher) -> None:
    token_file = dispatcher.root / "bad-token"
    token_file.write_text("crl_not-a-token\n")
    args = ["mcp", "--server", dispatcher.url, "--token-file", str(token_file)]
    done = subprocess.run(
        [*CORRAL, *args],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode != 0
    assert "401" in done.stderr and dispatcher.url + "/mcp" in done.stderr, done.stderr


@pytest.mark.slow
async def test_item18_a_session_refused_mid_way_is_a_tool_error_over_stdio(
    dispatcher: Dispatcher,
) -> None:
    """A TaskDriver session token logged out while ``corral mcp`` holds its session: the
    next call is an ``isError`` result quoting the dispatcher, not a lost MCP server."""
    async with http_session(dispatcher)(dispatcher.admin) as admin:
        project_id, _ = await make_project(admin, "logged-out")
    with dispatcher.http() as http:
        login = {"agentName": "leaver", "projectId": project_id}
        token = http.post("/api/auth/login", json=login).raise_for_status().json()["data"]["token"]
    async with stdio_session(dispatcher)(token) as agent:
        assert (await call(agent, "peek_next_task", projectId=project_id))["tasksAvailable"] == 0
        with dispatcher.http(token) as http:
            http.post("/api/auth/logout").raise_for_status()
        text = await refused(agent, "peek_next_task", projectId=project_id)
        assert text.startswith("refused by the Corral dispatcher: 401"), text
