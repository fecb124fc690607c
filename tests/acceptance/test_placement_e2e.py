"""Placement with the real `corral server`, `corral worker` and `corral submit` (issue 12):
two jobs that each ask for all of a worker's memory run one after the other; a job
asking more CPUs than any worker has waits with a reason while a later one runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.acceptance.test_worker_e2e import Cluster
from tests.acceptance.test_worker_e2e import cluster as cluster  # the module's fixture
from tests.processes import HOST_VISIBLE

SPAN = "date +%s.%N > {0}.start; sleep 0.6; date +%s.%N > {0}.end"


def span(root: Path, name: str) -> tuple[float, float]:
    return (float((root / f"{name}.start").read_text()), float((root / f"{name}.end").read_text()))


def test_item_placement_full_memory_jobs_run_one_after_the_other(cluster: Cluster) -> None:
    cluster.worker(
        "small", "--concurrency", "4", "--cpus", "2", "--memory-mb", "100", *HOST_VISIBLE
    )
    root = cluster.root
    ids = []
    for name in ("first", "second"):
        answer = cluster.cli(
            "submit", "--memory", "100M", "--", "sh", "-c", SPAN.format(root / name)
        )
        assert answer.returncode == 0, answer.stderr
        ids.append(answer.stdout.strip())
    for job_id in ids:
        job = cluster.wait_status(job_id, ("completed", "failed"), 30)
        assert job["status"] == "completed", job
        assert job["resources"]["memory_mb"] == 100
    (a_start, a_end), (b_start, b_end) = span(root, "first"), span(root, "second")
    assert a_end <= b_start or b_end <= a_start  # never together

    huge = cluster.cli("submit", "--cpus", "64", "--", "true")
    assert huge.returncode == 0, huge.stderr
    later = cluster.cli("submit", "--cpus", "1", "--wait", "--", "true")
    assert later.returncode == 0, later.stderr
    shown = cluster.cli("status", huge.stdout.strip())
    assert re.search(r"status\s+pending", shown.stdout), shown.stdout
    assert "needs 64 CPUs; the largest online worker has 2" in shown.stdout
    listed = cluster.cli("workers", "--json")
    [small] = [w for w in json.loads(listed.stdout) if w["executor_id"] == "small"]
    assert small["capacity"] == {"cpus": 2.0, "memory_mb": 100}
    assert cluster.job(huge.stdout.strip())["status"] == "pending"
    cluster.cli("cancel", huge.stdout.strip())


def test_item_placement_submit_refuses_a_bad_memory_size(cluster: Cluster) -> None:
    answer = cluster.cli("submit", "--memory", "lots", "--", "true")
    assert answer.returncode != 0 and "--memory" in answer.stderr
