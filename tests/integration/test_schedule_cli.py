"""`corral schedule ...` as a user runs it: real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.live import LiveServer, run_server


def _corral(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CORRAL_URL": live.url, "CORRAL_TOKEN": live.admin_token}
    return subprocess.run(
        [sys.executable, "-m", "corral.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_item15_schedule_cli_create_list_show_pause_resume_delete(tmp_path: Path) -> None:
    with run_server(tmp_path / "data") as live:
        made = _corral(
            live,
            "schedule",
            "create",
            "--name",
            "nightly",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "--json",
            "--",
            "echo",
            "hello world",
        )
        assert made.returncode == 0, made.stderr
        created = json.loads(made.stdout)
        schedule_id = created["id"]
        assert created["job"]["command"] == "echo 'hello world'"
        assert created["overlap"] == "skip" and len(created["next_runs"]) == 5

        listed = _corral(live, "schedule", "list")
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()[:2]
        assert header.split("\t")[:5] == ["id", "name", "cron", "timezone", "state"]
        assert row.split("\t")[:5] == [
            schedule_id,
            "nightly",
            "30 2 * * *",
            "Europe/Berlin",
            "active",
        ]

        shown = _corral(live, "schedule", "show", schedule_id)
        assert "30 2 * * * (Europe/Berlin)" in shown.stdout and "next" in shown.stdout

        assert _corral(live, "schedule", "pause", schedule_id).stdout.strip().endswith("paused")
        resumed = _corral(live, "schedule", "resume", schedule_id)
        assert "resumed; next run" in resumed.stdout

        bad = _corral(live, "schedule", "create", "--name", "x", "--cron", "* * *", "--", "true")
        assert bad.returncode == 2 and "cron" in bad.stderr

        assert _corral(live, "schedule", "delete", schedule_id).returncode == 0
        with live.client() as http:
            assert http.get(f"/api/v1/schedules/{schedule_id}").status_code == 404
