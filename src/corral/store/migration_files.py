"""The schema migrations each adapter applies, shipped as SQL files in the package."""

from __future__ import annotations

import importlib.resources


def load_migrations(backend: str) -> list[tuple[int, str]]:
    """(version, sql) pairs shipped in ``store/migrations/<backend>``, in order."""
    folder = importlib.resources.files("corral.store") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)
