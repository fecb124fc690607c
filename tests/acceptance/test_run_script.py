"""`make run` (scripts/run.sh) on Ctrl-C: the worker drains first, then the server stops,
and the script ends quietly with status 0 (issue 11, item 15)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.processes import clean_env, free_port, poll

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_item15_ctrl_c_on_run_script_drains_the_worker_before_the_server(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "run.out"
    with out.open("wb") as sink:
        script = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh")],
            env=clean_env(CORRAL_DATA_DIR=str(data), CORRAL_PORT=str(port)),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own foreground group, as in a terminal
        )
    try:
        poll(lambda: "Corral is running" in out.read_text(), 60, "run.sh to start")
        admin = (data / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
            body = {"command": "sleep 2; echo done", "lease_seconds": 30}
            job_id = http.post("/api/v1/jobs", json=body).raise_for_status().json()["id"]
            poll(
                lambda: http.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running",
                15,
                "the job to start",
            )
        os.killpg(script.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground group
        assert script.wait(60) == 0, out.read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait(10)
    # The job ran to its end and its outcome reached the server before the server stopped.
    with sqlite3.connect(data / "corral.sqlite3") as db:
        row = db.execute("SELECT status, exit_code FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert row == ("completed", 0), out.read_text()
    # The worker deregistered (it needs the server) before the server began to shut down.
    log = out.read_text()
    assert log.index('"action":"worker_deregistered"') < log.index('"msg":"Shutting down"'), log
