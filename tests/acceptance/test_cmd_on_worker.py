"""A job submitted through CMD Executor's API, with an archive uploaded through it,
runs on a real ``corral worker`` with the archive extracted under its working directory."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import httpx
import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster  # noqa: F401


@pytest.fixture(scope="module")
def cmd_worker(cluster: Cluster) -> Any:  # noqa: F811
    return cluster.worker("cmd", "--concurrency", "2", "--grace", "1")


def cmd_client(cluster: Cluster) -> httpx.Client:  # noqa: F811
    headers = {"Authorization": f"Bearer {cluster.admin}"}
    return httpx.Client(base_url=cluster.url + "/api", headers=headers, timeout=30)


def test_uploaded_zip_runs_in_its_working_directory(
    cluster: Cluster,  # noqa: F811
    cmd_worker: Any,
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("project/run.sh", "echo built from $(pwd | xargs basename)\ncat data.txt\n")
        zf.writestr("project/data.txt", "payload\n")
    with cmd_client(cluster) as http:
        upload = http.post(
            "/files/upload", files={"file": ("project.zip", archive.getvalue(), "application/zip")}
        )
        assert upload.status_code == 201, upload.text
        body = {
            "command": "sh run.sh",
            "fileUrl": upload.json()["url"],
            "workingDirectory": "project",
            "timeout": 60,
        }
        job_id = http.post("/jobs/submit", json=body).json()["jobId"]
        job = cluster.wait_status(job_id, ("completed", "failed"), 30)
        assert job["status"] == "completed", job
        status = http.get("/jobs/status", params={"jobId": job_id}).json()["job"]
        assert status["stdout"] == "built from project\npayload\n"
        assert status["exitCode"] == 0 and status["progress"] == 100
        assert status["workerId"] is not None


def test_a_working_directory_missing_from_the_archive_fails_clearly(
    cluster: Cluster,  # noqa: F811
    cmd_worker: Any,
) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("src/main.sh", "true\n")
    with cmd_client(cluster) as http:
        upload = http.post("/files/upload", files={"file": ("p.zip", archive.getvalue())})
        body = {"command": "true", "workingDirectory": "nowhere", "fileUrl": upload.json()["url"]}
        job_id = http.post("/jobs/submit", json=body).json()["jobId"]
        job = cluster.wait_status(job_id, ("completed", "failed"), 30)
        assert job["status"] == "failed"
        status = http.get("/jobs/status", params={"jobId": job_id}).json()["job"]
        assert status["status"] == "failed"
        assert "working directory 'nowhere' is not in the input archive" in status["error"]
