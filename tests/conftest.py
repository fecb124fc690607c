"""Fixtures shared by every suite: a clean CORRAL_* environment and a live dispatcher."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argon2
import argon2.profiles
import pytest

from corral.auth import passwords
from tests import shared_tls
from tests.live import LiveServer, run_server
from tests.pg_server import PgServer

shared_tls.install()  # before any test module makes an httpx client


@pytest.fixture(autouse=True)
def _scrub_corral_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never inherit a developer's CORRAL_* settings."""
    for name in list(os.environ):
        if name.startswith("CORRAL_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2id at argon2-cffi's cheapest cost (its profile for tests) in this process.

    The server's hasher is the library's RFC 9106 low-memory profile: 64 MiB and about
    a quarter of a second of CPU per hash or login, by design. The in-process servers
    of the tests create users and log in thousands of times, which came to minutes of
    CPU per run and nothing more to check. Passwords are still hashed and verified by
    Argon2id on the same code path; the servers that tests start as processes (the
    acceptance and browser suites) keep the production cost.
    """
    production = passwords._HASHER
    cheapest = dataclasses.replace(argon2.profiles.CHEAPEST, salt_len=16, hash_len=32)
    passwords._HASHER = argon2.PasswordHasher.from_parameters(cheapest)
    passwords._dummy_hash.cache_clear()
    try:
        yield
    finally:
        passwords._HASHER = production
        passwords._dummy_hash.cache_clear()


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


# ---- `make test` runs the suite on xdist workers (-n N --dist loadfile) --------------------


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, with ``tests/browser/`` as one file: see tests/xdist_units.py."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.xdist_units import FileUnits  # xdist is imported only when it runs

    return FileUnits(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker, the units that hold slow tests come first (the scheduler hands
    units out in this order); elsewhere the order is left alone."""
    if hasattr(config, "workerinput"):
        from tests.xdist_units import slow_units_first

        items[:] = slow_units_first(items)
