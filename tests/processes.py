"""Helpers for tests that drive real ``corral`` processes: a clean environment, a free
port, and polling for a condition with a deadline instead of fixed sleeps."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
