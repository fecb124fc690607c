"""A real `corral worker` against a real dispatcher, through a fault-injecting proxy when
the network matters: claims it can never make, unreachable dispatchers, frozen workers.

Item numbers refer to issue 11 ("Trust: close every hole...").
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from corral.agent.process import alive
from tests.faultproxy import DROP, PASS, FaultProxy
from tests.live import LiveServer, run_server
from tests.processes import CORRAL, HOST_VISIBLE, STARTUP, clean_env, poll, start_worker

HOLD = 3600.0  # a FaultProxy delay: the request is held, never answered in the test's time


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
    with FaultProxy(
        live_server.url, lambda c: "400" if c.path.endswith("/jobs/claim") else PASS
    ) as proxy:
        token = live_server.token("worker")
        worker = start_worker(proxy.url, token, tmp_path, "refused", "refused.log")
        try:
            assert worker.wait(20) == 1
        finally:
            stop(worker)
    log = log_of(tmp_path, "refused.log")
    assert '"action":"claim_refused"' in log, log
    assert len(proxy.seen("/jobs/claim")) == 1


def submit(server: LiveServer, **body: Any) -> str:
    with server.client() as http:
        job_id: str = http.post("/api/v1/jobs", json=body).raise_for_status().json()["id"]
        return job_id


def job(server: LiveServer, job_id: str) -> dict[str, Any]:
    with server.client() as http:
        answer: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        return answer


def pids_in(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.mark.parametrize("outage", [DROP, HOLD], ids=["refused", "silent"])
def test_item3_drain_with_unreachable_dispatcher_is_bounded(
    live_server: LiveServer, tmp_path: Path, outage: str | float
) -> None:
    """drain-timeout 1 s, kill grace 0.5 s: the worker exits within those plus the flush
    grace (5 s), whether the dispatcher refuses connections or never answers."""
    pids = tmp_path / "pids"
    token = live_server.token("worker")
    with FaultProxy(live_server.url, lambda call: PASS) as proxy:
        worker = start_worker(
            proxy.url, token, tmp_path, "cut-off", "cut-off.log",
            "--drain-timeout", "1", "--grace", "0.5", "--claim-wait", "1", *HOST_VISIBLE,
        )  # fmt: skip
        try:
            submit(live_server, command=f"sleep 300 & echo $! > {pids}; wait")
            poll(lambda: pids_in(pids), 15, "the job to start")
            proxy.rule = lambda call: outage
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(15) == 0
        finally:
            stop(worker)
    assert not alive(pids_in(pids)[0])
    assert '"action":"results_abandoned"' in log_of(tmp_path, "cut-off.log")


def test_item3_second_sigterm_ends_at_once_while_dispatcher_unreachable(
    live_server: LiveServer, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    token = live_server.token("worker")
    with FaultProxy(live_server.url, lambda call: PASS) as proxy:
        worker = start_worker(
            proxy.url, token, tmp_path, "stubborn", "stubborn.log",
            "--drain-timeout", "120", "--claim-wait", "1", *HOST_VISIBLE,
        )  # fmt: skip
        try:
            submit(live_server, command=f"trap '' TERM; sleep 300 & echo $! > {pids}; wait")
            poll(lambda: pids_in(pids), 15, "the job to start")
            proxy.rule = lambda call: HOLD
            worker.send_signal(signal.SIGTERM)
            poll(lambda: "drain_started" in log_of(tmp_path, "stubborn.log"), 5, "the drain")
            assert worker.poll() is None  # draining: the job may run 120 s more
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(5) == 0
        finally:
            stop(worker)
    poll(lambda: not alive(pids_in(pids)[0]), 5, "the job's processes to die")


def test_item15_idle_worker_exits_at_once_and_strands_no_job(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """SIGTERM during a 20 s long poll: the poll is aborted, the worker exits in a second
    or two, and a job submitted just after is not leased to the departed worker."""
    token = live_server.token("worker")
    worker = start_worker(
        live_server.url, token, tmp_path, "idle", "idle.log", "--claim-wait", "20"
    )
    try:
        poll(lambda: "worker_registered" in log_of(tmp_path, "idle.log"), STARTUP, "registration")
        time.sleep(0.5)  # the first claim is parked on the dispatcher now
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(5) == 0
    finally:
        stop(worker)
    job_id = submit(live_server, command="true")
    time.sleep(0.3)  # a parked claim still leasing would take it now
    assert (job(live_server, job_id)["status"], job(live_server, job_id)["attempt"]) == (
        "pending",
        0,
    )
    assert '"action":"worker_deregistered"' in log_of(tmp_path, "idle.log")


def test_item24_submit_timeout_gives_a_trapping_program_its_grace(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """`corral submit --timeout 2` of a program that traps SIGTERM, prints, sleeps 1 s and
    prints again: both lines come (the default grace is 5 s)."""
    program = "trap 'echo caught; sleep 1; echo second; exit 0' TERM; while :; do sleep 0.1; done"
    token = live_server.token("worker")
    worker = start_worker(live_server.url, token, tmp_path, "g", "g.log", "--claim-wait", "1")
    try:
        done = subprocess.run(
            [*CORRAL, "submit", "--follow", "--timeout", "2", "--", "sh", "-c", program],
            env=clean_env(CORRAL_URL=live_server.url, CORRAL_TOKEN=live_server.admin_token),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(15)
    assert done.stdout == "caught\nsecond\n", done.stderr
    assert "timed out after 2 s" in done.stderr


def test_item7_frozen_worker_never_starts_a_job_whose_lease_ran_out(tmp_path: Path) -> None:
    """A worker frozen (SIGSTOP) while a claim answer is in flight wakes after the lease
    ran out and the job was reaped: it must hand the job back, never run that attempt."""
    marks = tmp_path / "attempts"
    with run_server(tmp_path / "data", lease_grace=0, reaper_interval=0.2) as server:
        token = server.token("worker")
        worker = start_worker(
            server.url, token, tmp_path, "frozen", "frozen.log", "--claim-wait", "5", *HOST_VISIBLE
        )
        try:
            poll(
                lambda: "worker_registered" in log_of(tmp_path, "frozen.log"),
                STARTUP,
                "registration",
            )
            time.sleep(0.5)  # the first claim is parked on the dispatcher now
            worker.send_signal(signal.SIGSTOP)
            command = f"echo $CORRAL_ATTEMPT >> {marks}"
            job_id = submit(server, command=command, lease_seconds=1, max_retries=3)
            # The parked claim leases attempt 1 and its answer waits in the frozen socket.
            poll(lambda: job(server, job_id)["attempt"] == 1, 5, "the lease")
            poll(lambda: job(server, job_id)["status"] == "pending", 10, "the reaper")
            worker.send_signal(signal.SIGCONT)
            done = poll(
                lambda: (j := job(server, job_id))["status"] in ("completed", "failed") and j,
                20,
                "the job to end",
            )
        finally:
            worker.send_signal(signal.SIGCONT)
            worker.send_signal(signal.SIGTERM)
            worker.wait(15)
    assert done["status"] == "completed"
    assert "1" not in marks.read_text().split()  # attempt 1 never ran
    assert marks.read_text().split() == [str(done["attempt"])]


def test_item5_prefetched_job_outlasting_an_outage_is_handed_back_not_failed(
    tmp_path: Path,
) -> None:
    """A max_retries 0 job waits (prefetched) behind a running one when the dispatcher
    goes away for longer than its lease: the reaper fails it, but the worker never started
    it, so once the dispatcher answers again it is handed back and runs, once."""
    started, marks = tmp_path / "started", tmp_path / "attempts"
    with run_server(tmp_path / "data", lease_grace=0, reaper_interval=0.2) as server:
        token = server.token("worker")
        with FaultProxy(server.url, lambda call: PASS) as proxy:
            worker = start_worker(
                proxy.url, token, tmp_path, "cut", "cut.log",
                "--concurrency", "1", "--prefetch", "1", "--claim-wait", "1", *HOST_VISIBLE,
            )  # fmt: skip
            try:
                first = submit(server, command=f"touch {started}; sleep 4", lease_seconds=60)
                poll(started.exists, 15, "the first job to start")
                command = f"echo $CORRAL_ATTEMPT >> {marks}"
                waiting = submit(server, command=command, max_retries=0, lease_seconds=2)
                poll(lambda: job(server, waiting)["attempt"] == 1, 10, "the prefetch claim")
                proxy.rule = lambda call: DROP
                poll(lambda: job(server, waiting)["status"] == "failed", 10, "the reaper")
                proxy.rule = lambda call: PASS
                done = poll(
                    lambda: (j := job(server, waiting))["status"] in ("completed",) and j,
                    20,
                    "the handed-back job to run",
                )
                assert job(server, first)["status"] == "completed"
            finally:
                worker.send_signal(signal.SIGTERM)
                worker.wait(15)
    assert marks.read_text().split() == ["2"]  # ran once, as the attempt after the hand-back
    assert (done["attempt"], done["exit_code"]) == (2, 0)
