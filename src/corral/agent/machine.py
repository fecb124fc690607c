"""What a worker tells the dispatcher about its machine when it registers."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Sequence
from typing import Any


def machine_info(labels: Sequence[str], concurrency: int) -> dict[str, Any]:
    """What ``POST /executors`` tells the dispatcher about this machine."""
    return {
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count() or 1,
        "memory_mb": _memory_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "labels": list(labels),
        "concurrency": concurrency,
        "metadata": {"pid": os.getpid(), "python": platform.python_version()},
    }


def capacity_offer(cpus: float | None, memory_mb: int | None) -> dict[str, Any]:
    """The CPUs and memory this worker offers jobs for placement: what the operator
    said (``--cpus``, ``--memory-mb``), else the whole machine's."""
    return {
        "cpus": cpus if cpus is not None else float(os.cpu_count() or 1),
        "memory_mb": memory_mb if memory_mb is not None else _memory_mb(),
    }


def _memory_mb() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError):
        return None
