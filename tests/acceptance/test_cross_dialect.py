"""One core, many faces: a TaskDriver task with a command runs on a real ``corral worker``
and every other face (Octaskly, the executor queue, CMD Executor) sees the same job end."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster  # noqa: F401


@pytest.fixture(scope="module")
def cross_worker(cluster: Cluster) -> Any:  # noqa: F811
    return cluster.worker("cross", "--concurrency", "2", "--grace", "1")


def api(cluster: Cluster) -> httpx.Client:  # noqa: F811
    headers = {"Authorization": f"Bearer {cluster.admin}"}
    return httpx.Client(base_url=cluster.url, headers=headers, timeout=30)


def test_a_taskdriver_task_with_a_command_is_one_job_in_every_view(
    cluster: Cluster,  # noqa: F811
    cross_worker: Any,
) -> None:
    with api(cluster) as http:
        project = http.post("/api/projects", json={"name": "cross-dialect"})
        assert project.status_code == 201, project.text
        project_id = project.json()["data"]["id"]
        task_type = http.post(
            f"/api/projects/{project_id}/task-types",
            json={"name": "greet", "template": "greet {{who}}", "variables": ["who"]},
        )
        assert task_type.status_code == 201, task_type.text
        body = {
            "typeId": task_type.json()["data"]["id"],
            "variables": {"who": "everyone"},
            "command": "echo cross-dialect",
        }
        created = http.post(f"/api/projects/{project_id}/tasks", json=body)
        assert created.status_code == 201, created.text
        task_id = created.json()["data"]["id"]

        native = cluster.wait_status(task_id, ("completed", "failed"), 30)
        assert native["status"] == "completed", native
        assert native["stdout"] == "cross-dialect\n" and native["exit_code"] == 0

        octaskly = http.get(f"/api/v1/tasks/{task_id}").json()
        assert octaskly["status"] == "completed" and octaskly["exit_code"] == 0
        assert octaskly["stdout"] == "cross-dialect\n"
        assert isinstance(octaskly["duration_ms"], int)

        taskdriver = http.get(f"/api/tasks/{task_id}").json()["data"]
        assert taskdriver["status"] == "completed"
        assert taskdriver["instructions"] == "greet everyone"
        assert taskdriver["assignedTo"] == native["executor_id"]

        cmd = http.get("/api/jobs/status", params={"jobId": task_id}).json()["job"]
        assert cmd["status"] == "completed" and cmd["stdout"] == "cross-dialect\n"

        stats = http.get(f"/api/projects/{project_id}/stats").json()["data"]
        assert stats["project"]["stats"]["completedTasks"] == 1
