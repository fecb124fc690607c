"""`corral watch` follows many jobs to the end, in plain lines when not on a terminal."""

from __future__ import annotations

from typing import Any

from tests.acceptance.test_worker_e2e import Cluster, cluster, shared_worker

__all__ = ["cluster", "shared_worker"]  # module-scoped fixtures shared with the e2e tests


def test_watch_follows_every_job_and_fails_if_one_failed(
    cluster: Cluster, shared_worker: Any
) -> None:
    ok = [cluster.submit(command=f"sleep 0.{i}; echo {i}") for i in range(1, 3)]
    bad = cluster.submit(command="sleep 0.2; exit 4")
    watched = cluster.cli("watch", *ok, bad)
    assert watched.returncode == 1, watched.stderr
    final = {}
    for line in watched.stdout.splitlines():
        job_id, status, code = line.split("\t")
        final[job_id] = (status, code)
    assert final == {ok[0]: ("completed", "0"), ok[1]: ("completed", "0"), bad: ("failed", "4")}
    assert cluster.cli("watch", *ok).returncode == 0
