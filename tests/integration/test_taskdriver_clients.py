"""The TaskDriver document's own client classes, run against a live server.

The Python and JavaScript sections of the document (``shared/seeds/004_*.txt``),
copied into ``tests/seed_clients/`` with one added header on login (the agent
token a login must be earned with, item 16 of issue 11), are filled in three
places: the base URL, the project id and that token. Each logs in, takes the
next task and completes it, exactly as the document's usage lines do; the task
must then be completed in the store.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corral.domain.states import JobStatus
from tests.integration.test_taskdriver_agents import (
    _on_store,
    add_tasks,
    agent_token,
    make_project,
)
from tests.live import LiveServer

CLIENTS = Path(__file__).resolve().parents[1] / "seed_clients"
NODE_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"
DOC_BASE_URL = "http://localhost:3000/api"


def substituted(code: str, live: LiveServer, project_id: str) -> str:
    assert DOC_BASE_URL in code and "'project-id'" in code
    assert code.count("Bearer agent-token") == 1  # the one added header, on login only
    token = agent_token(live, project_id)
    filled = code.replace(DOC_BASE_URL, f"{live.url}/api").replace("agent-token", token)
    return filled.replace("'project-id'", f"'{project_id}'")


def assert_completed(live: LiveServer, task_id: str) -> None:
    job = _on_store(live, lambda store: store.get_job(task_id))
    assert job is not None and job.status == JobStatus.COMPLETED
    assert job.executor_id == "my-agent"
    assert job.result == {"result": "Task completed successfully", "outputs": {}}


def test_the_documents_python_client(live_server: LiveServer, tmp_path: Path) -> None:
    project = make_project(live_server)
    [task_id] = add_tasks(live_server, project)
    code = (CLIENTS / "taskdriver_client.py").read_text()
    script = tmp_path / "client.py"
    script.write_text(substituted(code, live_server, project))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert_completed(live_server, task_id)


def test_the_documents_javascript_client(live_server: LiveServer, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "axios").is_dir():
        pytest.skip("node or axios is missing: scripts/setup.sh installs axios with npm")
    project = make_project(live_server)
    [task_id] = add_tasks(live_server, project)
    code = (CLIENTS / "taskdriver_client.js").read_text()
    head, usage = code.split("// Usage", 1)
    # The usage lines await at top level, which a CommonJS script (require) cannot do;
    # they run unchanged inside an async function that fails the process on error.
    fail = "(e) => { console.error(e); process.exit(1); }"
    wrapped = f"{head}(async () => {{\n{usage}}})().catch({fail});\n"
    script = tmp_path / "client.js"
    script.write_text(substituted(wrapped, live_server, project))
    done = subprocess.run(
        [node, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},  # the real axios, from npm
    )
    assert done.returncode == 0, done.stderr
    assert_completed(live_server, task_id)


def test_item16_the_documents_client_without_the_header_is_refused(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """The document's login as it stands (no credential) no longer opens a session."""
    project = make_project(live_server)
    add_tasks(live_server, project)
    code = (CLIENTS / "taskdriver_client.py").read_text()
    bare = code.replace(", headers={'Authorization': 'Bearer agent-token'}", "")
    assert "agent-token" not in bare
    script = tmp_path / "client.py"
    filled = bare.replace(DOC_BASE_URL, f"{live_server.url}/api")
    script.write_text(filled.replace("'project-id'", f"'{project}'"))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "Invalid agent login" in done.stderr
