"""``corral server`` replicas as real processes on one PostgreSQL database, for tests that
kill them (SIGKILL) or take their database away.

Each replica has a fixed port (it can be started again in place), its own data
directory and log file, and writes an access log so a test can tell which replica
a worker talked to.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.processes import CORRAL, clean_env, free_port, poll

# Leases are reaped within half a second of running out, and a replica spares them only
# 2 s after its start: a lease nobody renews is gone within the test's time.
FAST_REAPER = {"CORRAL_REAPER_INTERVAL": "0.5", "CORRAL_LEASE_GRACE": "2"}


@dataclass
class Replica:
    name: str
    root: Path
    dsn: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def data_dir(self) -> Path:
        return self.root / f"data-{self.name}"

    def start(self) -> None:
        """Start the process; ``wait_healthy`` waits for it to serve."""
        args = ["server", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        args += ["--database-url", self.dsn, "--log-format", "text"]
        env = clean_env(CORRAL_ACCESS_LOG="1", **FAST_REAPER)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([*CORRAL, *args], env=env, stdout=log, stderr=log)

    def health(self) -> int:
        """``/api/v1/health``'s status, 0 when the replica does not answer at all."""
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code
        except httpx.HTTPError:
            return 0

    def wait_healthy(self, seconds: float = 60) -> None:
        def healthy() -> bool:
            assert self.process is not None and self.process.poll() is None, self.tail()
            return self.health() == 200

        poll(healthy, seconds, f"replica {self.name} to serve")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:] if self.log.exists() else ""

    def requests(self, path_part: str) -> list[str]:
        """Access-log lines of requests whose path contains ``path_part``."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        lines = text.splitlines()
        return [line for line in lines if "uvicorn.access" in line and path_part in line]


def start_replicas(root: Path, dsn: str, *names: str) -> list[Replica]:
    """Replicas started together (migrations race, as in production) and serving."""
    replicas = [Replica(name, root, dsn) for name in names]
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.wait_healthy()
    return replicas


def admin_token(replicas: list[Replica]) -> str:
    """The admin token the first replica to reach the empty database minted."""
    for replica in replicas:
        path = replica.data_dir / "admin-token"
        if path.exists():
            return path.read_text().strip()
    raise AssertionError("no replica minted an admin token")
