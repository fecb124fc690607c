"""Item 15 (server half): stopping ``corral server`` is quiet, quick and answers every
parked long-poll claim with its empty answer, never a 500.

Before: uvicorn waited out its 5 s graceful timeout for the parked claim, then
cancelled it (a ``CancelledError`` traceback and a 500 for the worker), and on
SIGTERM re-raised the signal after shutdown, so the process died of it (status -15).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import CORRAL, clean_env, free_port, poll

API = "/api/v1"
GRACEFUL_TIMEOUT = 5.0  # what `corral server` gives uvicorn: a stop must not wait it out


def _start(data_dir: Path, stderr: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [*CORRAL, "server", "--port", str(port), "--data-dir", str(data_dir)],
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, stderr.read_text()
        try:
            healthy = httpx.get(f"{url}{API}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
        return healthy and (data_dir / "admin-token").exists()

    poll(up, seconds=30, what="corral server to start")
    return proc, url


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_item15_server_stop_answers_parked_claims_and_exits_quietly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data_dir, stderr = tmp_path / "data", tmp_path / "server.err"
    proc, url = _start(data_dir, stderr)
    try:
        token = (data_dir / "admin-token").read_text().strip()
        answers: list[httpx.Response] = []

        def parked_claim() -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                answers.append(
                    http.post(
                        f"{API}/jobs/claim",
                        json={"executor_id": "idle", "n": 4, "wait": 30},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                )

        followed: list[str] = []

        def follower(job_id: str) -> None:
            """A live stream open at the stop ends cleanly too (the job never ran)."""
            with (
                httpx.Client(base_url=url, timeout=60) as http,
                http.stream(
                    "GET",
                    f"{API}/jobs/{job_id}/output/follow",
                    headers={"Authorization": f"Bearer {token}"},
                ) as stream,
            ):
                followed.append(str(stream.status_code))
                followed.extend(stream.iter_lines())

        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
            # labelled so the parked claim (no labels) can never take it
            body = {"command": "true", "labels": ["elsewhere"]}
            job_id = http.post(f"{API}/jobs", json=body).json()["id"]
        threads = [
            threading.Thread(target=parked_claim),
            threading.Thread(target=follower, args=(job_id,)),
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # the claim is parked waiting for work, the follower for output
        assert not answers
        stopped_at = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=GRACEFUL_TIMEOUT + 10)
        took = time.monotonic() - stopped_at
        for thread in threads:
            thread.join(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.read_text()
    assert code == 0, err
    assert took < GRACEFUL_TIMEOUT, f"the stop waited out the graceful timeout: {took:.1f} s"
    [answer] = answers
    assert answer.status_code == 204, answer.text  # the native claim's "no job" answer
    assert answer.content == b""
    assert followed == ["200"]  # opened, then closed by the stop without a byte
    for noise in ("Traceback", "CancelledError", "graceful shutdown exceeded", '"level":"error"'):
        assert noise not in err, err
