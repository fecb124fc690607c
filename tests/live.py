"""A real dispatcher on 127.0.0.1 for HTTP tests: uvicorn in a thread, real store underneath."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from corral.api.app import create_app
from corral.settings import ServerSettings
from tests.pg_server import PgServer
from tests.processes import STARTUP, free_port


@dataclass
class LiveServer:
    url: str
    settings: ServerSettings
    admin_token: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def token(self, role: str) -> str:
        with self.client() as http:
            answer = http.post("/api/v1/admin/tokens", json={"role": role, "name": f"test-{role}"})
            answer.raise_for_status()
            secret: str = answer.json()["token"]
            return secret


# Every test client comes from 127.0.0.1, and suites that check that each route refuses
# bad credentials send far more than the production 60 failed authentications a minute
# per IP to one shared server; later 401s would turn into 429s. Tests of that limit
# pass their own value.
TEST_DEFAULTS: dict[str, object] = {"auth_failure_rate_limit": "100000/minute"}


@contextmanager
def run_server(data_dir: Path, **overrides: object) -> Iterator[LiveServer]:
    port = free_port()
    settings = ServerSettings(
        host="127.0.0.1",
        port=port,
        data_dir=data_dir,
        **{**TEST_DEFAULTS, **overrides},  # type: ignore[arg-type]
    )
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,
        loop="asyncio",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="corral-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    # A replica joining a database that already has an admin mints none.
    token_file = data_dir / "admin-token"
    token = token_file.read_text().strip() if token_file.exists() else ""
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, token)
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def run_server_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[LiveServer]:
    """``run_server`` on ``backend`` ("sqlite", or "postgres": a fresh database of the
    session's PostgreSQL), for fixtures parametrized over both stores."""
    overrides: dict[str, object] = {}
    if backend == "postgres":
        pg: PgServer = request.getfixturevalue("pg_server")
        overrides["database_url"] = asyncio.run(pg.new_database(migrated=False))
    with run_server(tmp_path / "data", **overrides) as live:
        yield live
