"""The worker's systemd unit grants exactly the capabilities its isolation needs: a real
worker started with deploy/corral-worker.service's ``CapabilityBoundingSet`` and
``NoNewPrivileges`` (through ``setpriv``, which applies the same kernel limits
systemd would) reaches the level a full root reaches here, runs a job as its own
uid in its own directory, runs a ``network: false`` job, and kills a cancelled one.

(Each capability of the set was needed when this was written: without CAP_FOWNER a
job's directory cannot be made 0700 after its chown; without CAP_NET_ADMIN bwrap
cannot bring up a network-less job's loopback; without CAP_SYS_ADMIN there are no
namespaces; without SETUID, SETGID, CHOWN or DAC_OVERRIDE the worker falls to
``none``. CAP_KILL lets the worker's SIGTERM reach a job's processes before the
cgroup's SIGKILL does.)"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from corral.agent import sandbox
from tests.docs_blocks import REPO
from tests.processes import CORRAL, STARTUP, clean_env, poll, server_process, worker_token

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the worker unit runs as root; so must this test"
)


def unit_capabilities() -> list[str]:
    text = (REPO / "deploy" / "corral-worker.service").read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("CapabilityBoundingSet=")]
    assert "NoNewPrivileges=yes" in text.splitlines()
    return [cap.removeprefix("CAP_").lower() for cap in line.split("=", 1)[1].split()]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    data = tmp_path / "data"
    with server_process(data, tmp_path / "server.log") as (url, _):
        yield url, (data / "admin-token").read_text().strip(), worker_token(data)


@pytest.mark.slow  # a server, a bwrap probe, a worker and four jobs
def test_the_worker_units_capabilities_are_enough_for_its_isolation(
    server: tuple[str, str, str], tmp_path: Path
) -> None:
    url, admin, token = server
    token_file = tmp_path / "worker.token"
    token_file.touch(0o600)
    token_file.write_text(token)
    work = Path("/var/tmp") / f"corral-caps-{os.getpid()}"  # parents others may traverse
    caps = ",".join(f"+{cap}" for cap in unit_capabilities())
    argv = ["setpriv", f"--bounding-set=-all,{caps}", "--inh-caps=-all", "--no-new-privs"]
    argv += [*CORRAL, "worker", "--server", url, "--token-file", str(token_file)]
    argv += ["--work-dir", str(work), "--isolation", "auto", "--claim-wait", "2", "--grace", "1"]
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(argv, env=clean_env(), stdout=out, stderr=out)
    expected = "sandbox" if sandbox.works()[0] else "user"
    try:
        poll(lambda: '"action":"isolation_level"' in log.read_text(), STARTUP, "the worker's level")
        assert f'"level":"{expected}"' in log.read_text(), log.read_text()
        with httpx.Client(
            base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {admin}"}
        ) as h:
            own = _submit(h, {"command": "id -u > $HOME/uid && cat $HOME/uid"})
            offline = _submit(h, {"command": "true", "network": expected != "sandbox"})
            long = _submit(h, {"command": "sleep 300"})
            for job_id in (own, offline):
                job = _finished(h, job_id)
                assert job["status"] == "completed", (job, log.read_text()[-2000:])
            uid = h.get(f"/jobs/{own}/output", params={"stream": "stdout"}).json()["data"]
            assert 200000 <= int(uid) <= 265535, uid  # its own uid, from --uid-range
            poll(lambda: h.get(f"/jobs/{long}").json()["status"] == "running", 30, "sleep")
            h.delete(f"/jobs/{long}").raise_for_status()
            assert _finished(h, long)["status"] == "cancelled"
    finally:
        worker.terminate()
        assert worker.wait(60) == 0, log.read_text()[-2000:]
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _submit(http: httpx.Client, body: dict[str, Any]) -> str:
    job_id: str = http.post("/jobs", json=body).raise_for_status().json()["id"]
    return job_id


def _finished(http: httpx.Client, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = http.get(f"/jobs/{job_id}").json()
        return job if job["status"] in ("completed", "failed", "cancelled") else None

    found: dict[str, Any] = poll(done, 60, f"job {job_id}")
    return found
