"""``corral submit --retention-days``: the real ``corral`` against a real server, the
job's own retention stored as the native submit's ``retention_days``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.live import LiveServer, run_server
from tests.processes import CORRAL, clean_env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with run_server(tmp_path_factory.mktemp("cli-retention") / "data") as live:
        yield live


def submit(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    # Wide enough that an error is one line of the box typer draws around it.
    env = clean_env(CORRAL_URL=live.url, CORRAL_TOKEN=live.admin_token, COLUMNS="200")
    return subprocess.run(
        [*CORRAL, "submit", *args], env=env, capture_output=True, text=True, timeout=60
    )


def total_jobs(live: LiveServer) -> int:
    with live.client() as http:
        return int(http.get("/api/v1/jobs", params={"limit": 1}).headers["X-Total-Count"])


@pytest.mark.parametrize("days", [365, 0])  # 0 (keep for ever) is sent, not dropped
def test_submit_retention_days_is_the_jobs_own_retention(server: LiveServer, days: int) -> None:
    done = submit(server, "--retention-days", str(days), "echo keep")
    assert done.returncode == 0, done.stderr
    with server.client() as http:
        job = http.get(f"/api/v1/jobs/{done.stdout.strip()}").json()
    assert job["retention_days"] == days


@pytest.mark.parametrize(
    ("bad", "why"),
    [("-1", "greater than or equal to 0"), ("36501", "less than or equal to 36500")],
)
def test_submit_refuses_a_retention_days_out_of_range_and_submits_nothing(
    server: LiveServer, bad: str, why: str
) -> None:
    before = total_jobs(server)
    done = submit(server, "--retention-days", bad, "echo keep")
    assert done.returncode == 2
    assert f"Invalid value for '--retention-days': Input should be {why}" in done.stderr
    assert total_jobs(server) == before
