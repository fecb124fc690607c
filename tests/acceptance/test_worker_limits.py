"""The worker under stress and against bad inputs, with the real processes.

A job that floods stdout must not grow the worker; a binary whose hash does not
match must never run.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.acceptance.test_worker_e2e import Cluster, cluster, poll
from tests.processes import HOST_VISIBLE

__all__ = ["cluster"]  # the module-scoped dispatcher fixture, shared with the e2e tests

GIB = 1 << 30


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc status")


@pytest.mark.slow
def test_a_gibibyte_of_stdout_leaves_the_worker_small_and_is_capped(cluster: Cluster) -> None:
    worker = cluster.worker("flood", "--concurrency", "1")
    try:
        job_id = cluster.submit(command=f"yes corral | head -c {GIB}", timeout=300)
        job = cluster.wait_status(job_id, ("completed", "failed"), seconds=240)
        assert job["status"] == "completed", job
        assert job["stdout_truncated"] is True
        assert len(job["stdout"].encode()) == 1 << 20  # the default cap, kept from the start
        assert job["stdout"].startswith("corral\ncorral\n")
        assert worker.poll() is None
        assert peak_rss_mb(worker.pid) < 100
    finally:  # later tests need jobs to reach their own workers, not this one
        worker.terminate()
        worker.wait(20)


@pytest.fixture
def binary_server(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """Serve one executable script over HTTP on 127.0.0.1; yields (url, marker, sha256)."""
    marker = tmp_path / "it-ran"
    script = f"#!/bin/sh\necho ran > {marker}\n".encode()
    (tmp_path / "tool").write_bytes(script)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/tool"
        yield url, marker, hashlib.sha256(script).hexdigest()
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_binary_with_the_wrong_sha256_never_runs(
    cluster: Cluster, binary_server: tuple[str, Path, str]
) -> None:
    url, marker, sha = binary_server
    # The binaries are served from 127.0.0.1, which a worker refuses unless allowed.
    # The binary writes its marker under pytest's tmp dir: watched from the host.
    cluster.worker("binaries", "--concurrency", "2", "--allow-private-urls", *HOST_VISIBLE)
    wrong = cluster.submit(type="tool", binary_url=url, binary_sha256="0" * 64, priority="high")
    job = cluster.wait_status(wrong, ("completed", "failed"))
    assert job["status"] == "failed"
    assert "sha256" in (job["error_message"] or "").lower()
    assert not marker.exists()
    # The same binary with its true hash does run: the refusal above was the hash.
    right = cluster.submit(type="tool", binary_url=url, binary_sha256=sha, priority="high")
    assert cluster.wait_status(right, ("completed", "failed"))["status"] == "completed"
    poll(marker.exists, 5, "the binary's marker file")
