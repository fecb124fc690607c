"""Two real ``corral server`` processes on one PostgreSQL database, as a deployment runs
them: for tests of what every replica must show alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import CORRAL, clean_env, free_port, poll


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str, **headers: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", **headers},
            timeout=30,
        )

    def healthy(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()[-4000:]
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def replica(root: Path, name: str, dsn: str, env: dict[str, str]) -> Iterator[Replica]:
    """``corral server`` in a child process on a free port; yields once /health answers."""
    port = free_port()
    data_dir = root / name
    log = root / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*CORRAL, "server", "--port", str(port), "--data-dir", str(data_dir)],
            env=clean_env(CORRAL_DATABASE_URL=dsn, CORRAL_LOG_LEVEL="warning", **env),
            stdout=out,
            stderr=out,
        )
    running = Replica(name, f"http://127.0.0.1:{port}", process, log)
    try:
        poll(running.healthy, 30, f"replica {name} to answer")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def replica_pair(
    root: Path, dsn: str, env: dict[str, str], first_only: dict[str, str] | None = None
) -> Iterator[tuple[Replica, Replica, str]]:
    """Replicas ``a`` and ``b`` and the admin token ``a`` minted on the empty database.

    ``b`` starts once ``a`` answers, so ``a`` alone migrates and bootstraps;
    ``first_only`` is more environment for ``a`` (the first admin, say).
    """
    with ExitStack() as stack:
        a = stack.enter_context(replica(root, "a", dsn, {**env, **(first_only or {})}))
        token = (root / "a" / "admin-token").read_text().strip()
        b = stack.enter_context(replica(root, "b", dsn, env))
        yield a, b, token
