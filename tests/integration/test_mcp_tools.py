"""Issue 18: TaskDriver's tools over MCP, on both transports (streamable HTTP at /mcp and
``corral mcp`` over stdio), driven by the ``mcp`` SDK's own client against a real server;
and ``submit_command``'s arguments checked as the native submit checks them."""

from __future__ import annotations

from collections.abc import Iterator

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
)


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatcher]:
    with run_dispatcher(tmp_path_factory.mktemp("mcp-tools")) as running:
        yield running


@pytest.fixture(params=TRANSPORTS)
def connect(request: pytest.FixtureRequest, dispatcher: Dispatcher) -> Connect:
    return connector(dispatcher, request.param)


async def test_item18_agents_get_extend_and_complete_tasks_the_second_agent_cannot(
    dispatcher: Dispatcher, connect: Connect, request: pytest.FixtureRequest
) -> None:
    name = f"queue-{request.node.callspec.id}"
    async with connect(dispatcher.admin) as admin:
        project_id, type_id = await make_project(admin, name)
        one = await call(
            admin, "create_task", projectId=name, typeId="greet", variables={"who": "a"}
        )
        assert one["instructions"] == "greet a" and one["status"] == "queued"
        bulk = await call(
            admin,
            "create_tasks_bulk",
            projectId=project_id,
            tasks=[{"typeId": type_id, "variables": {"who": w}} for w in ("b", "c")],
            batchId="batch-1",
        )
        assert bulk["createdCount"] == 2
    first, second = dispatcher.token("agent", project_id), dispatcher.token("agent", project_id)
    async with connect(first) as agent, connect(second) as other:
        peek = await call(agent, "peek_next_task", projectId=name)
        assert peek["tasksAvailable"] == 3
        taken = await call(agent, "get_next_task", projectId=name)  # no agentName: the session's
        task_id = taken["task"]["id"]
        assert taken["task"]["status"] == "running" and taken["agentName"]
        again = await call(agent, "get_next_task", projectId=name)
        assert again["task"]["id"] == task_id  # the session's name resumes its own lease
        extended = await call(agent, "extend_task_lease", taskId=task_id, minutes=30)
        assert extended["agentName"] == taken["agentName"]
        alias = await call(agent, "extend_lease", taskId=task_id, extensionMinutes=31)
        assert alias["leaseExpiresAt"] >= extended["leaseExpiresAt"]
        stolen = await refused(
            other, "complete_task", taskId=task_id, result="mine", agentName=taken["agentName"]
        )
        assert "another" in stolen or "forbidden" in stolen, stolen
        named = await refused(other, "complete_task", taskId=task_id, result="mine")
        assert "conflict" in named or "forbidden" in named, named
        done = await call(agent, "complete_task", taskId=task_id, result="ok", outputs={"n": 1})
        assert done["status"] == "completed" and done["result"] == {
            "result": "ok",
            "outputs": {"n": 1},
        }
        theirs = await call(other, "get_next_task", projectId=name, agentName="other-agent")
        assert theirs["task"]["id"] != task_id and theirs["agentName"] == "other-agent"
        failed = await call(
            other, "fail_task", taskId=theirs["task"]["id"], error="no", canRetry=False
        )
        assert failed["status"] == "failed" and failed["error"] == "no"
        lease = await call(agent, "get_lease_stats", projectId=name)
        assert lease["runningTasks"] == 0 and lease["expiredLeases"] == 0


async def test_item18_projects_task_types_and_the_work_queue_prompt(
    dispatcher: Dispatcher, connect: Connect, request: pytest.FixtureRequest
) -> None:
    name = f"types-{request.node.callspec.id}"
    async with connect(dispatcher.admin) as admin:
        project_id, type_id = await make_project(admin, name)
        by_name = await call(admin, "get_project", projectId=name)
        assert by_name["id"] == project_id and by_name["instructions"] == f"rules of {name}"
        listed = await call(admin, "list_projects", status="all")
        assert name in [p["name"] for p in listed]
        updated = await call(admin, "update_project", projectId=project_id, instructions="new")
        assert updated["instructions"] == "new"
        types = await call(admin, "list_task_types", projectId=name)
        assert [t["id"] for t in types] == [type_id]
        assert (await call(admin, "get_task_type", typeId=type_id))["name"] == "greet"
        changed = await call(admin, "update_task_type", typeId=type_id, maxRetries=2)
        assert changed["maxRetries"] == 2
        stats = await call(admin, "get_project_stats", projectId=name)
        assert stats["project"]["id"] == project_id and stats["queueDepth"] == 0
        assert (await call(admin, "health_check"))["status"] == "healthy"
        default = await call(admin, "create_task", projectId=name, variables={"who": "x"})
        assert default["typeId"] == type_id and default["instructions"] == "greet x"
        missing = await refused(admin, "get_project", projectId="no-such-project")
        assert "not found" in missing
        bad = await refused(admin, "create_task_type", projectId=name, name="bad name!")
        assert "invalid argument" in bad and "name" in bad
        prompts = await admin.list_prompts()
        assert [p.name for p in prompts.prompts] == ["work_queue"]
        got = await admin.get_prompt("work_queue", {"projectId": name})
        text = got.messages[0].content.text  # type: ignore[union-attr]
        for step in ("get_project", "get_next_task", "complete_task", "fail_task", f'"{name}"'):
            assert step in text


async def test_submit_command_takes_the_jobs_own_retention_in_the_native_range(
    dispatcher: Dispatcher,
) -> None:
    async with http_session(dispatcher)(dispatcher.admin) as admin:
        for days in (365, 0):  # 0: kept for ever, not "unset"
            submitted = await call(admin, "submit_command", command="true", retention_days=days)
            job = await call(admin, "get_job", jobId=submitted["id"])
            assert job["retention_days"] == days
            await call(admin, "cancel_job", jobId=submitted["id"])
        before = (await call(admin, "list_jobs", limit=1))["total"]
        for days, why in (
            (-1, "greater than or equal to 0"),
            (36501, "less than or equal to 36500"),
        ):
            text = await refused(admin, "submit_command", command="true", retention_days=days)
            assert text.endswith(f"invalid argument: retention_days: Input should be {why}"), text
        assert (await call(admin, "list_jobs", limit=1))["total"] == before
