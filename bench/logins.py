"""Login benchmark: prints figures, asserts nothing.

Argon2id is deliberately slow and memory-hard (64 MiB a hash), so a burst of
logins is where the dispatcher spends the most CPU and memory per request. This
starts the real `corral server` as a subprocess, makes one user (the first-start
admin), fires rounds of concurrent logins over HTTP on 127.0.0.1 and prints
logins/s, p50/p99 latency and the server process's resident memory (VmRSS) and
peak (VmHWM) before and after the burst.

    .venv/bin/python bench/logins.py [--concurrency 50] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.live import free_port  # noqa: E402

EMAIL = "bench@example.com"
PASSWORD = "bench-password-123"


@contextlib.contextmanager
def server(data_dir: Path) -> Iterator[tuple[str, int]]:
    """The server with one admin user; the login rate limit off, else the burst gets 429s."""
    port = free_port()
    cmd = [sys.executable, "-m", "corral.cli.main", "server", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), "--log-level", "warning"]
    env = {
        **os.environ,
        "CORRAL_ADMIN_EMAIL": EMAIL,
        "CORRAL_ADMIN_PASSWORD": PASSWORD,
        "CORRAL_LOGIN_RATE_LIMIT": "off",
    }
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health").status_code == 200:
                break
        if time.monotonic() > deadline or proc.poll() is not None:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server did not start: {stderr}")
        time.sleep(0.05)
    try:
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the process, in MiB; VmHWM is the peak since it started."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # reported in kB
    return fields["VmRSS"], fields["VmHWM"]


async def one_login(http: httpx.AsyncClient) -> float:
    start = time.perf_counter()
    answer = await http.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
    answer.raise_for_status()
    return (time.perf_counter() - start) * 1000


async def burst(url: str, concurrency: int, rounds: int) -> tuple[float, list[float]]:
    """Every round starts ``concurrency`` logins at once and waits for all of them."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as http:
        await one_login(http)  # warm up: the dummy hash, the JWT secret, connections
        latencies: list[float] = []
        start = time.perf_counter()
        for _ in range(rounds):
            latencies += await asyncio.gather(*(one_login(http) for _ in range(concurrency)))
        return len(latencies) / (time.perf_counter() - start), sorted(latencies)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    print(f"corral login benchmark, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp)) as (url, pid):
        rss, peak = memory_mib(pid)
        print(f"server before the burst: RSS {rss:.0f} MiB, peak RSS {peak:.0f} MiB")
        rate, times = asyncio.run(burst(url, args.concurrency, args.rounds))
        p50, p99 = statistics.median(times), times[max(0, int(len(times) * 0.99) - 1)]
        print(
            f"{args.rounds} rounds of {args.concurrency} concurrent logins: {rate:.1f} logins/s,"
            f" p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
        rss, peak = memory_mib(pid)
        print(f"server after the burst: RSS {rss:.0f} MiB, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
