"""Two real ``corral server`` processes on one PostgreSQL database, as a deployment runs
them: for tests of what every replica must show alike."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
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


def spawn(root: Path, name: str, dsn: str, env: dict[str, str]) -> Replica:
    """``corral server`` in a child process on a free port, not yet waited for."""
    port = free_port()
    log = root / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [*CORRAL, "server", "--port", str(port), "--data-dir", str(root / name)],
            env=clean_env(CORRAL_DATABASE_URL=dsn, CORRAL_LOG_LEVEL="warning", **env),
            stdout=out,
            stderr=out,
        )
    return Replica(name, f"http://127.0.0.1:{port}", process, log)


def stop(replica: Replica) -> None:
    replica.process.terminate()
    try:
        replica.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        replica.process.kill()
        replica.process.wait(timeout=10)


@contextmanager
def replica_pair(
    root: Path, dsn: str, env: dict[str, str], first_only: dict[str, str] | None = None
) -> Iterator[tuple[Replica, Replica, str]]:
    """Replicas ``a`` and ``b``, started side by side, and an admin token.

    ``first_only`` is more environment for ``a`` (the first admin user, say). The
    first to find the database without an admin token mints one (both may).
    """
    a = spawn(root, "a", dsn, {**env, **(first_only or {})})
    b = spawn(root, "b", dsn, env)
    try:
        for replica in (a, b):
            poll(replica.healthy, 60, f"replica {replica.name} to answer")
        minted = [root / name / "admin-token" for name in ("a", "b")]
        token = next(path for path in minted if path.exists()).read_text().strip()
        yield a, b, token
    finally:
        for replica in (a, b):
            stop(replica)
