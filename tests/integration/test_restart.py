"""Durability: every submission answered 201 survives a ``kill -9`` of the real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.processes import free_port

API = "/api/v1"
SHA = "cd" * 32
SUBMITTERS = 4
KILL_AFTER = 150  # acknowledged submissions before the kill


@contextmanager
def corral_server(data_dir: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``corral server`` as a child process; yields it once /health answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "corral.cli.main",
                "server",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"server exited early:\n{log.read_text()}"
            try:
                if httpx.get(f"{url}{API}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"server did not start:\n{log.read_text()}"
            time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_acknowledged_jobs_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "server.log"
    acknowledged: list[str] = []
    lock = threading.Lock()
    enough = threading.Event()
    stop = threading.Event()
    unexpected: list[str] = []
    cut_off: list[int] = []  # submitters whose request the kill interrupted

    with corral_server(data_dir, log) as (proc, url):
        token = (data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}

        def submitter(n: int) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
                i = 0
                while not stop.is_set():
                    i += 1
                    body = {
                        "type": f"t{n}",
                        "binary_url": "https://example.com/b",
                        "binary_sha256": SHA,
                        "priority": "background",
                        "arguments": [str(n), str(i)],
                    }
                    try:
                        answer = http.post(f"{API}/jobs", json=body)
                    except httpx.TransportError:
                        with lock:
                            cut_off.append(n)
                        return  # the server is gone: this submission was never acknowledged
                    if answer.status_code != 201:
                        unexpected.append(f"{answer.status_code} {answer.text}")
                        return
                    with lock:
                        acknowledged.append(answer.json()["id"])
                        if len(acknowledged) >= KILL_AFTER:
                            enough.set()

        threads = [threading.Thread(target=submitter, args=(n,)) for n in range(SUBMITTERS)]
        for thread in threads:
            thread.start()
        try:
            assert enough.wait(60), f"only {len(acknowledged)} submissions acknowledged"
            os.kill(proc.pid, signal.SIGKILL)  # while the submitters are still going
            proc.wait(timeout=10)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    assert not unexpected, unexpected
    assert cut_off, "the kill landed after the submitters stopped"
    assert all(not t.is_alive() for t in threads)
    with lock:
        survivors_expected = list(acknowledged)
    assert len(survivors_expected) >= KILL_AFTER
    assert len(set(survivors_expected)) == len(survivors_expected)

    with corral_server(data_dir, log) as (_, url):
        # the same data dir keeps the same admin token
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            listed = http.get(f"{API}/jobs", params={"limit": 1000})
            assert listed.status_code == 200
            total = int(listed.headers["X-Total-Count"])
            stored: set[str] = set()
            for offset in range(0, total, 1000):
                page = http.get(f"{API}/jobs", params={"limit": 1000, "offset": offset})
                stored |= {j["id"] for j in page.json()}
            missing = [job_id for job_id in survivors_expected if job_id not in stored]
            assert not missing, f"{len(missing)} acknowledged jobs lost, e.g. {missing[:3]}"
            # spot-check by id, as a client would
            for job_id in survivors_expected[:: max(1, len(survivors_expected) // 20)]:
                answer = http.get(f"{API}/jobs/{job_id}")
                assert answer.status_code == 200
                assert answer.json()["status"] == "pending"
            # at most the in-flight submissions (one per thread) were stored unacknowledged
            assert len(survivors_expected) <= total <= len(survivors_expected) + SUBMITTERS
            # and the restarted server still takes work
            fresh = http.post(f"{API}/jobs", json={"command": "true"})
            assert fresh.status_code == 201
