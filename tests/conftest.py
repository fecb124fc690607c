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


# ---- `make test` runs the suite on xdist workers (--dist loadgroup) ------------------------


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test file is one unit of work, as under ``--dist loadfile``: a module's
    fixtures (servers, workers, PostgreSQL databases) start once, and its tests run in
    their order, as they do without xdist. ``tests/browser/`` is one unit: its server
    and its screenshot folder belong to the package. The units that hold slow tests are
    handed out first, so that the longest do not start last while the other workers
    sit idle; without xdist the order is left alone."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_unit_of(item)))
    if config.getoption("dist", "no") == "no":
        return
    weight: dict[str, int] = {}
    for item in items:
        unit = _unit_of(item)
        slow = unit == "browser" or item.get_closest_marker("slow") is not None
        weight[unit] = weight.get(unit, 0) + slow
    # sorted() is stable: within a unit, and among units of equal weight, order is kept.
    items[:] = sorted(items, key=lambda item: -weight[_unit_of(item)])


def _unit_of(item: pytest.Item) -> str:
    relative = item.path.relative_to(Path(__file__).parent)
    return "browser" if relative.parts[0] == "browser" else relative.as_posix()
