"""`make run` (scripts/run.sh) on Ctrl-C in a real terminal (a pty): the worker drains
first, then the server stops, and `make` ends quietly with status 0 (issue 11, item 15);
restarted, it keeps its worker's token and name (issue 14)."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.processes import clean_env, free_port, poll

ROOT = Path(__file__).resolve().parents[2]
RESET_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGPIPE,
    signal.SIGXFSZ,
)


class Terminal:
    """``make -o setup run`` on a pty of its own, its output collected as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.marker = env["CORRAL_DATA_DIR"].encode()  # on the server's and worker's argv
        self.reaped = False  # make's pid is free for reuse once it is
        self.output = bytearray()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: make with the pty as its controlling terminal
            try:
                # A terminal starts its programs with every signal at its default and none
                # blocked. This process may not be like that: Python ignores SIGPIPE and
                # SIGXFSZ, and a test run started in the background of a shell without job
                # control (`nohup make test &`) ignores SIGHUP, SIGINT and SIGQUIT. exec
                # passes an ignored signal on, and bash cannot trap a SIGINT it was started
                # ignoring: run.sh's Ctrl-C would then change nothing.
                for signum in RESET_SIGNALS:
                    signal.signal(signum, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                os.chdir(ROOT)
                os.execvpe("make", ["make", "-o", "setup", "run"], env)
            finally:
                os._exit(127)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    piece = os.read(self.fd, 65536)
                except OSError:  # the pty closed: every process on it has gone
                    return
                if not piece:
                    return
                self.output += piece

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")  # the terminal sends SIGINT to its foreground group

    def wait(self, seconds: float) -> int:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.reaped = True
                self._reader.join(5)
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        raise AssertionError(
            f"make run still running after {seconds} s:\n{self.text()}\n{self.processes()}"
        )

    def kill_leftovers(self) -> None:
        """SIGKILL what `make run` left behind: while make is unreaped, every process on
        this terminal (make's session); and the server and the worker, which lead
        sessions of their own, found by the data dir on their command lines."""
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError, ValueError):
                session = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3])
                mine = session == self.pid and not self.reaped
                if mine or self.marker in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), signal.SIGKILL)
        if not self.reaped:  # killed above: reap it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.reaped = True

    def processes(self) -> str:
        """Who is on this terminal and how each takes signals: what a Ctrl-C that
        changed nothing needs explained (the terminal's foreground group, and each
        process's group, state and ignored, blocked and caught signal masks)."""
        lines = [f"terminal foreground group: {os.tcgetpgrp(self.fd)}"]
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                stat = (status.parent / "stat").read_text().rsplit(")", 1)[1].split()
                rows = status.read_text().splitlines()
                fields = dict(row.split(":\t", 1) for row in rows if ":\t" in row)
                cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:  # gone meanwhile
                continue
            if int(stat[3]) == self.pid:  # its session: make's, from pty.fork
                lines.append(
                    f"pid {status.parent.name} pgrp {stat[2]} state {stat[0]} "
                    f"ign {fields.get('SigIgn')} blk {fields.get('SigBlk')} "
                    f"cgt {fields.get('SigCgt')}: {cmdline[:120].decode(errors='replace')}"
                )
        return "\n".join(lines)


@pytest.mark.slow
def test_item15_ctrl_c_on_make_run_drains_the_worker_before_the_server(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    term = Terminal(clean_env(CORRAL_DATA_DIR=str(data), CORRAL_PORT=str(port)))
    try:
        poll(lambda: "Corral is running" in term.text(), 60, "make run to start")
        admin = (data / "admin-token").read_text().strip()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as http:
            body = {"command": "sleep 2; echo done", "lease_seconds": 30}
            job_id = http.post("/api/v1/jobs", json=body).raise_for_status().json()["id"]
            poll(
                lambda: http.get(f"/api/v1/jobs/{job_id}").json()["status"] == "running",
                15,
                "the job to start",
            )
    finally:
        term.ctrl_c()  # also what stops everything when the test failed half-way
        try:
            status = term.wait(60)
        finally:
            term.kill_leftovers()
    log = term.text()
    assert status == 0, log
    assert "make: ***" not in log  # neither "Error 1" nor "Interrupt"
    # The job ran to its end and its outcome reached the server before the server stopped.
    with sqlite3.connect(data / "corral.sqlite3") as db:
        row = db.execute("SELECT status, exit_code FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert row == ("completed", 0), log
    # The worker deregistered (it needs the server) before the server began to shut down.
    # On a terminal both log readable lines (issue 14): "... INFO corral.agent: ... action=x".
    assert log.index("action=worker_deregistered") < log.index("uvicorn.error: Shutting down"), log


def _run_once(env: dict[str, str], log: Path) -> tuple[str, list[str]]:
    """``scripts/run.sh`` until its worker is online, then stopped: the worker's token
    and the names of the workers that were online."""
    data = Path(env["CORRAL_DATA_DIR"])
    url = f"http://127.0.0.1:{env['CORRAL_PORT']}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        poll(lambda: "Corral is running" in log.read_text(), 60, "run.sh to start")
        admin = {"Authorization": f"Bearer {(data / 'admin-token').read_text().strip()}"}

        def online() -> list[str]:
            rows = httpx.get(url + "/api/v1/executors", headers=admin, timeout=10).json()
            return [row["executor_id"] for row in rows if row["state"] == "online"]

        names: list[str] = poll(online, 30, "the local worker to register")
    finally:
        proc.send_signal(signal.SIGTERM)  # what Ctrl-C does to the script off a terminal
        assert proc.wait(60) == 0, log.read_text()
    return (data / "worker-token").read_text(), names


@pytest.mark.slow
def test_item4_make_run_keeps_its_worker_token_and_name_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # A token the server does not accept (revoked, another database's) is replaced.
    (data / "worker-token").write_text("not-a-token-of-this-server\n")
    port = str(free_port())
    env = clean_env(CORRAL_DATA_DIR=str(data), CORRAL_PORT=port, CORRAL_CLAIM_WAIT="1")
    first, names = _run_once(env, tmp_path / "run1.log")
    assert first.strip() != "not-a-token-of-this-server"
    assert (data / "worker-token").stat().st_mode & 0o777 == 0o600
    assert names == [f"local-{os.uname().nodename}"]
    second, names = _run_once(env, tmp_path / "run2.log")
    assert second == first  # the token still worked: reused, nothing minted
    assert names == [f"local-{os.uname().nodename}"]  # the same worker, by name
    with sqlite3.connect(data / "corral.sqlite3") as db:
        minted = db.execute("SELECT COUNT(*) FROM api_tokens WHERE role = 'worker'").fetchone()
    assert minted == (1,)
