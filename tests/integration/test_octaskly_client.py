"""The Octaskly document's Python client, run as written against Corral.

The snippet is the document's (shared/seeds/002_*.txt, "Python Client"),
verbatim; only ``base_url`` and ``token`` are substituted, the token minted
with ``corral token create`` as a user of Corral would.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import run_server

CORRAL = [sys.executable, "-m", "corral.cli.main"]

SNIPPET = """\
import requests

base_url = "http://localhost:3000"
token = "bearer_token_here"
headers = {"Authorization": f"Bearer {token}"}

# Create task
task_data = {
    "command": "echo hello",
    "timeout": 3600
}
response = requests.post(
    f"{base_url}/api/v1/tasks",
    json=task_data,
    headers=headers
)
task_id = response.json()["id"]

# Get task status
response = requests.get(
    f"{base_url}/api/v1/tasks/{task_id}",
    headers=headers
)
print(response.json())
"""


def substituted(base_url: str, token: str) -> str:
    code = SNIPPET.replace('base_url = "http://localhost:3000"', f"base_url = {base_url!r}")
    code = code.replace('token = "bearer_token_here"', f"token = {token!r}")
    assert code.count(base_url) == 1 and code.count(token) == 1  # nothing else changed
    return code


def test_the_documents_python_client_works_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    with run_server(data) as server:
        create = ["token", "create", "--role", "submitter", "--name", "octaskly-client"]
        minted = subprocess.run(
            [*CORRAL, *create, "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        assert re.fullmatch(r"crl_\S+", token)
        exec(compile(substituted(server.url, token), "octaskly_client.py", "exec"), {})
    printed = ast.literal_eval(capsys.readouterr().out.strip())
    assert printed["command"] == "echo hello"
    assert printed["status"] == "queued"
    assert printed["worker_id"] is None
    assert printed["stdout"] == "" and printed["exit_code"] is None
