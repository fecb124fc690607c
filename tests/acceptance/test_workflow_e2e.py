"""Issue 15's acceptance: a workflow file run with the real `corral workflow run`, on a
real server and worker. `build`, then `test` and `lint` side by side, then `package`,
which starts only after both; a failing `test` cancels `package` with a reason."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_worker_e2e import Cluster
from tests.acceptance.test_worker_e2e import cluster as cluster  # the module's fixture

WORKFLOW = """\
name: release
jobs:
  - key: build
    command: sleep 0.2
    labels: [wf-e2e]
  - key: test
    command: {test}
    labels: [wf-e2e]
    depends_on: [build]
  - key: lint
    command: sleep 1
    labels: [wf-e2e]
    depends_on: [build]
  - key: package
    command: echo packaged
    labels: [wf-e2e]
    depends_on: [test, lint]
"""


@pytest.fixture(scope="module")
def worker(cluster: Cluster) -> subprocess.Popen[bytes]:
    return cluster.worker("wf", "--concurrency", "2", "--labels", "wf-e2e")


def run_workflow(cluster: Cluster, tmp_path: Path, test: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "release.yaml"
    path.write_text(WORKFLOW.format(test=test))
    ran = cluster.cli("workflow", "run", str(path), "--follow", "--json")
    assert ran.returncode in (0, 1), ran.stderr
    shown: dict[str, Any] = json.loads(ran.stdout.strip().splitlines()[-1])
    return ran.returncode, shown


def at(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.slow
def test_item15_workflow_runs_in_order_on_real_workers(
    cluster: Cluster, worker: Any, tmp_path: Path
) -> None:
    code, shown = run_workflow(cluster, tmp_path, "sleep 1")
    jobs = {j["key"]: j for j in shown["jobs"]}
    assert (code, shown["status"]) == (0, "completed"), shown
    assert {k: j["status"] for k, j in jobs.items()} == dict.fromkeys(jobs, "completed")
    start = {k: at(j["started_at"]) for k, j in jobs.items()}
    end = {k: at(j["finished_at"]) for k, j in jobs.items()}
    assert start["test"] >= end["build"] and start["lint"] >= end["build"]
    assert start["package"] >= max(end["test"], end["lint"])  # only after both
    assert start["test"] < end["lint"] and start["lint"] < end["test"]  # side by side
    assert cluster.cli("logs", jobs["package"]["id"]).stdout == "packaged\n"


@pytest.mark.slow
def test_item15_failing_test_cancels_package_with_a_reason(
    cluster: Cluster, worker: Any, tmp_path: Path
) -> None:
    code, shown = run_workflow(cluster, tmp_path, "sh -c 'exit 3'")
    jobs = {j["key"]: j for j in shown["jobs"]}
    assert (code, shown["status"]) == (1, "failed")
    assert (jobs["test"]["status"], jobs["test"]["exit_code"]) == ("failed", 3)
    assert jobs["lint"]["status"] == "completed"
    package = jobs["package"]
    assert (package["status"], package["started_at"]) == ("cancelled", None)
    assert package["error_message"] == f"not run: dependency {jobs['test']['id']} failed"
    status = cluster.cli("workflow", "status", shown["id"])
    assert "package" in status.stdout and "not run: dependency" in status.stdout
