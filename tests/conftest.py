"""Fixtures shared by every suite: a clean CORRAL_* environment and a live dispatcher."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer, run_server
from tests.pg_server import PgServer


@pytest.fixture(autouse=True)
def _scrub_corral_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's CORRAL_* settings."""
    for name in list(os.environ):
        if name.startswith("CORRAL_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL per session, started only if a test asks for it."""
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with run_server(tmp_path / "data") as server:
        yield server
