"""Helpers for tests that drive real ``corral`` processes: a clean environment, a free
port, and polling for a condition with a deadline instead of fixed sleeps."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

CORRAL = [sys.executable, "-m", "corral.cli.main"]
# For a worker whose jobs the test watches from the host: pids it compares with the
# host's /proc, files written under pytest's tmp dir. At the default isolation
# (sandbox) a job has its own PID namespace, a private /tmp and a read-only host, and
# at user level it cannot reach pytest's 0700 dirs (docs/isolation.md).
HOST_VISIBLE = ("--isolation", "none")
# Seconds to wait for a server to answer or a worker to register. A start takes a second
# or two on an idle machine, and ten times that on a loaded one (`make test` runs several
# pytest workers on two cores, and the machine may be shared): a wait is a deadline for
# "it never came up", not a measure of how fast it comes up.
STARTUP = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``CORRAL_*`` setting that could leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(check: Callable[[], Any], seconds: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)


def start_worker(
    url: str, token: str, root: Path, name: str, log_name: str, *args: str
) -> subprocess.Popen[bytes]:
    """A real ``corral worker`` named ``name``, working under ``root/work-<name>`` and
    logging to ``root/<log_name>``; ``args`` are further command-line options."""
    with (root / log_name).open("ab") as log:
        return subprocess.Popen(
            [
                *CORRAL,
                "worker",
                "--server",
                url,
                "--name",
                name,
                "--work-dir",
                str(root / f"work-{name}"),
                *args,
            ],
            env=clean_env(CORRAL_TOKEN=token),
            stdout=log,
            stderr=log,
        )


@contextmanager
def server_process(
    data_dir: Path, log: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``corral server`` on a free port (``args``: further options; ``--tls-cert``
    makes it https, trusted by its own certificate), answering its health check when the
    block begins; its URL and process. Stopped after the block (killed if it lingers)."""
    port = free_port()
    cert = args[args.index("--tls-cert") + 1] if "--tls-cert" in args else None
    url = f"{'https' if cert else 'http'}://127.0.0.1:{port}"
    argv = [*CORRAL, "server", "--port", str(port), "--data-dir", str(data_dir), *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env or clean_env(), stdout=out, stderr=out)
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=cert) if cert else True

    def healthy() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with httpx.Client(verify=verify) as http:
                return http.get(url + "/api/v1/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        poll(healthy, STARTUP, "the server")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def worker_token(data_dir: Path) -> str:
    """A fresh worker token, made as an operator would: ``corral token create``."""
    made = subprocess.run(
        [*CORRAL, "token", "create", "--role", "worker", "--data-dir", str(data_dir)],
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


def stop_all(procs: list[subprocess.Popen[bytes]], seconds: float) -> None:
    """SIGTERM every process still running (a worker drains on it), then wait for each,
    killing one that lingers past ``seconds``."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
