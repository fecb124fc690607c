"""The CMD Executor document's two curl walkthroughs, run as written with curl.

Each command below is copied from the document's "Examples" section; the only
changes are the ones the document asks the reader to make (the server address,
and the ids and tokens that earlier answers returned) plus one header: the
document's worker registration shows no credentials but states that every
endpoint except login needs them, so it sends a join token (a worker-role token
from ``corral token create --role worker``). A ``.curlrc`` in a private HOME
makes curl print each answer's status code after its body.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer, run_server

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is missing: scripts/setup.sh installs it"
)

DOC_SERVER = "http://localhost:3000"

LOGIN = """curl -X POST http://localhost:3000/api/auth/login \\
  -H "Content-Type: application/json" \\
  -d '{
    "email": "user@example.com",
    "password": "password-12345x"
  }'"""
UPLOAD = """curl -X POST http://localhost:3000/api/files/upload \\
  -H "Authorization: Bearer $TOKEN" \\
  -F "file=@project.zip\""""
SUBMIT = """curl -X POST http://localhost:3000/api/jobs/submit \\
  -H "Authorization: Bearer $TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "command": "npm test",
    "fileUrl": "/uploads/'$FILE_ID'/project.zip",
    "timeout": 600
  }'"""
POLL = """curl http://localhost:3000/api/jobs/status?jobId=$JOB_ID \\
  -H "Authorization: Bearer $TOKEN\""""

REGISTER = """curl -X POST http://localhost:3000/api/workers/register \\
  -H "Authorization: Bearer $JOIN_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "workerId": "worker-001",
    "hostname": "desktop-pc",
    "cpuCount": 8
  }'"""
GET_JOB = """curl http://localhost:3000/api/jobs/get-job \\
  -H "x-worker-token: $WORKER_TOKEN\""""
STREAM = """curl -X POST http://localhost:3000/api/jobs/stream-output \\
  -H "x-worker-token: $WORKER_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "jobId": "job-12345",
    "data": "test line\\n",
    "type": "stdout"
  }'"""
RESULT = """curl -X POST http://localhost:3000/api/jobs/submit-result \\
  -H "x-worker-token: $WORKER_TOKEN" \\
  -H "Content-Type: application/json" \\
  -d '{
    "jobId": "job-12345",
    "workerId": "worker-001",
    "stdout": "tests passed",
    "stderr": "",
    "exitCode": 0
  }'"""


class Shell:
    """Runs the walkthrough's commands in one directory with its variables set."""

    def __init__(self, live: LiveServer, home: Path) -> None:
        self.live = live
        self.home = home
        self.vars: dict[str, str] = {}
        (home / ".curlrc").write_text('-s\n-S\nwrite-out = "\\n%{http_code}"\n')

    def run(self, command: str, job_id: str | None = None) -> tuple[int, Any]:
        command = command.replace(DOC_SERVER, self.live.url)
        if job_id is not None:  # the reader puts the job they got in place of the example's
            command = command.replace("job-12345", job_id)
        env = {"PATH": os.environ["PATH"], "HOME": str(self.home), **self.vars}
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.home,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        body, _, status = done.stdout.rpartition("\n")
        return int(status), json.loads(body) if body.strip() else None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(
        tmp_path / "data", admin_email="user@example.com", admin_password="password-12345x"
    ) as live:
        yield live


def test_complete_job_submission_flow_then_worker_execution_flow(
    server: LiveServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("package.json", '{"scripts": {"test": "echo tests passed"}}')
    (home / "project.zip").write_bytes(archive.getvalue())
    sh = Shell(server, home)

    # --- Complete Job Submission Flow -------------------------------------------------
    status, login = sh.run(LOGIN)
    assert status == 200
    assert login["success"] is True and login["expiresIn"] == "24h"
    assert login["user"]["email"] == "user@example.com" and login["user"]["role"] == "admin"
    assert set(login["user"]) == {"id", "email", "role"}
    sh.vars["TOKEN"] = login["token"]

    status, upload = sh.run(UPLOAD)
    assert status == 201
    assert upload["success"] is True and upload["filename"] == "project.zip"
    assert upload["size"] == len(archive.getvalue())
    assert upload["url"] == f"/uploads/{upload['fileId']}/project.zip"
    assert upload["uploadedAt"].endswith("Z") and upload["expiresAt"] > upload["uploadedAt"]
    sh.vars["FILE_ID"] = upload["fileId"]

    status, submitted = sh.run(SUBMIT)
    assert status == 201
    assert submitted["success"] is True and submitted["status"] == "queued"
    assert submitted["createdAt"].endswith("Z")
    assert isinstance(submitted["estimatedWaitTime"], int)
    sh.vars["JOB_ID"] = job_id = submitted["jobId"]

    status, polled = sh.run(POLL)
    assert status == 200
    assert polled["success"] is True
    assert polled["job"]["jobId"] == job_id and polled["job"]["status"] == "queued"
    assert {
        "workerId",
        "createdAt",
        "startedAt",
        "stdout",
        "stderr",
        "progress",
        "exitCode",
    } <= set(polled["job"])

    # --- Worker Execution Flow -----------------------------------------------------------
    sh.vars["JOIN_TOKEN"] = server.token("worker")
    status, registered = sh.run(REGISTER)
    assert status == 201
    assert registered["success"] is True and registered["workerId"] == "worker-001"
    assert registered["registeredAt"].endswith("Z")
    sh.vars["WORKER_TOKEN"] = registered["token"]

    status, assigned = sh.run(GET_JOB)
    assert status == 200 and assigned["success"] is True
    job = assigned["job"]
    assert job["jobId"] == job_id and job["command"] == "npm test" and job["timeout"] == 600
    assert job["fileUrl"].startswith(server.url) and upload["fileId"] in job["fileUrl"]
    assert "workingDirectory" in job

    status, streamed = sh.run(STREAM, job_id)
    assert (status, streamed) == (200, {"success": True, "received": True})

    status, result = sh.run(RESULT, job_id)
    assert (status, result) == (200, {"success": True, "message": "Result saved", "jobId": job_id})

    status, idle = sh.run(GET_JOB)
    assert (status, idle) == (204, None)

    status, final = sh.run(POLL)
    assert status == 200
    done = final["job"]
    assert done["status"] == "completed" and done["exitCode"] == 0
    assert done["workerId"] == "worker-001" and done["progress"] == 100
    assert done["stdout"] == "test line\ntests passed"
