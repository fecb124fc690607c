"""Helpers for tests that drive real ``corral`` processes: a clean environment, a free
port, and polling for a condition with a deadline instead of fixed sleeps."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

CORRAL = [sys.executable, "-m", "corral.cli.main"]


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
