"""Issue 18, end to end: an agent submits a shell command over MCP (both transports), a
real ``corral worker`` runs it, ``wait_for_job`` returns its exit code and ``tail_output``
its output; a task created over MCP is the same job every other face shows."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator

import pytest

from tests.mcp_harness import (
    TRANSPORTS,
    Connect,
    Dispatcher,
    call,
    connector,
    make_project,
    run_dispatcher,
)
from tests.processes import STARTUP, poll, start_worker


def _registered(dispatcher: Dispatcher) -> bool:
    with dispatcher.http() as http:
        return bool(http.get("/api/v1/executors").raise_for_status().json())


@pytest.fixture(scope="module")
def dispatcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dispatcher]:
    root = tmp_path_factory.mktemp("mcp-worker")
    with run_dispatcher(root) as running:
        worker = start_worker(
            running.url,
            running.token("worker"),
            root,
            "mcp-worker",
            "worker.log",
            "--concurrency",
            "2",
            "--claim-wait",
            "3",
            "--grace",
            "1",
        )
        try:
            poll(lambda: _registered(running), STARTUP, "the worker to register")
            yield running
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(10)
            except subprocess.TimeoutExpired:
                worker.kill()


@pytest.fixture(params=TRANSPORTS)
def connect(request: pytest.FixtureRequest, dispatcher: Dispatcher) -> Connect:
    return connector(dispatcher, request.param)


async def test_item18_submit_command_runs_on_a_worker_wait_and_tail_report_it(
    dispatcher: Dispatcher, connect: Connect
) -> None:
    async with connect(dispatcher.admin) as agent:
        workers = await call(agent, "list_workers")
        assert [w["executor_id"] for w in workers] == ["mcp-worker"]
        submitted = await call(
            agent, "submit_command", command="echo first; echo second; exit 3", timeout=60
        )
        job_id = submitted["id"]
        finished = await call(agent, "wait_for_job", jobId=job_id, timeout=60)
        assert finished["finished"] is True and finished["exit_code"] == 3, finished
        assert finished["status"] == "failed"
        tail = await call(agent, "tail_output", jobId=job_id, lines=1)
        assert tail["text"] == "second\n" and tail["nextOffset"] == len("first\nsecond\n")
        whole = await call(agent, "tail_output", jobId=job_id, offset=0)
        assert whole["text"] == "first\nsecond\n"
        listed = await call(agent, "list_jobs", status="failed", mine=True)
        assert job_id in [j["id"] for j in listed["jobs"]]
        assert (await call(agent, "get_job", jobId=job_id))["attempts"][0]["exit_code"] == 3


async def test_item18_a_task_created_over_mcp_is_the_same_job_in_every_face(
    dispatcher: Dispatcher, connect: Connect, request: pytest.FixtureRequest
) -> None:
    name = f"cross-{request.node.callspec.id}"
    async with connect(dispatcher.admin) as admin:
        project_id, type_id = await make_project(admin, name)
        task = await call(
            admin,
            "create_task",
            projectId=name,
            typeId=type_id,
            variables={"who": "all"},
            command="echo cross-face",
        )
        done = await call(admin, "wait_for_job", jobId=task["id"], timeout=60)
        assert done["status"] == "completed" and done["exit_code"] == 0, done
        over_mcp = await call(admin, "get_task", taskId=task["id"])
    with dispatcher.http() as http:
        taskdriver = http.get(f"/api/tasks/{task['id']}").raise_for_status().json()["data"]
        native = http.get(f"/api/v1/jobs/{task['id']}").raise_for_status().json()
    assert taskdriver == over_mcp
    assert taskdriver["projectId"] == project_id and taskdriver["instructions"] == "greet all"
    assert native["id"] == task["id"] and native["project_id"] == project_id
    assert native["status"] == "completed" and native["stdout"] == "cross-face\n"
