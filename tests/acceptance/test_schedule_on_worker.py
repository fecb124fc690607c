"""A schedule's jobs run on a real `corral worker`; `overlap: skip` keeps runs apart."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.live import run_server
from tests.processes import poll, start_worker


def _at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.slow
def test_item15_overlap_skip_never_starts_a_run_while_the_previous_one_runs(
    tmp_path: Path,
) -> None:
    with run_server(tmp_path / "data") as live:
        worker = start_worker(live.url, live.token("worker"), tmp_path, "w1", "w1.log")
        try:
            with live.client() as http:
                body = {
                    "name": "slow tick",
                    "cron": "* * * * * *",
                    "overlap": "skip",
                    "job": {"command": "sleep 2.5"},
                }
                schedule_id = http.post("/api/v1/schedules", json=body).json()["id"]

                def finished_runs() -> list[dict[str, Any]]:
                    shown = http.get(f"/api/v1/schedules/{schedule_id}").json()
                    done = [j for j in shown["last_jobs"] if j["status"] == "completed"]
                    return done if len(done) >= 2 else []

                runs = poll(finished_runs, 40, "two completed runs")
                http.patch(f"/api/v1/schedules/{schedule_id}", json={"paused": True})
                time.sleep(0.2)
                jobs = http.get(f"/api/v1/schedules/{schedule_id}").json()["last_jobs"]
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    assert len(runs) >= 2
    ordered = sorted(jobs, key=lambda j: _at(j["scheduled_for"]))
    for earlier, later in itertools.pairwise(ordered):
        # a tick is only fired once the previous run has finished
        assert earlier["finished_at"] is not None
        assert _at(later["created_at"]) >= _at(earlier["finished_at"]), (earlier, later)
    ticks = [_at(j["scheduled_for"]) for j in ordered]
    assert ticks[1] - ticks[0] >= 2  # the ticks during the first run were skipped
