"""A real `corral worker` against a real dispatcher, through a fault-injecting proxy when
the network matters: claims it can never make, unreachable dispatchers, frozen workers.

Item numbers refer to issue 11 ("Trust: close every hole...").
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.live import LiveServer
from tests.processes import start_worker
from tests.worker_proxy import PASS, fault_proxy


def log_of(root: Path, name: str) -> str:
    path = root / name
    return path.read_text() if path.exists() else ""


def stop(worker: subprocess.Popen[bytes]) -> None:
    """Leave no worker behind, whatever the test did."""
    if worker.poll() is None:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)


def test_item1_claim_refused_for_good_exits_nonzero(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """A 400 on every claim is not retried for ever: logged, then exit status 1."""
    with fault_proxy(live_server.url) as proxy:
        proxy.rule = lambda method, path: 400 if path.endswith("/jobs/claim") else PASS
        token = live_server.token("worker")
        worker = start_worker(proxy.url, token, tmp_path, "refused", "refused.log")
        try:
            assert worker.wait(20) == 1
        finally:
            stop(worker)
    log = log_of(tmp_path, "refused.log")
    assert '"action":"claim_refused"' in log, log
    assert proxy.count("POST", "/jobs/claim") == 1
