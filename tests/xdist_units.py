"""How ``make test`` shares the suite among xdist workers (``-n N --dist loadfile``).

A unit of work is one test file, as under plain ``--dist loadfile``: a module's
fixtures (servers, workers, PostgreSQL databases) start once, and its tests run in
the order they are written, as without xdist (some modules' later tests read what
earlier ones left on a module-scoped server). ``tests/browser/`` is one unit: its
server and the screenshot folder it empties at the start belong to the package.

Units that hold slow tests (marked ``slow``, or browser tests) are handed out first,
most slow tests first: a two-minute unit started last would keep one worker busy
while the others sit idle. xdist hands units out in collection order (its reordering
by size is turned off), so the order is set where the workers collect.

(``--dist loadgroup`` with ``xdist_group`` marks would say the same, but pytest 9.2
no longer lets xdist rename a test's node id, which is how it learns the groups, and
the marks are silently ignored; this scheduler reads nothing but node ids.)
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadFileScheduling

BROWSER = "tests/browser/"


def unit_of(nodeid: str) -> str:
    """The unit of work of a test, from its node id (``tests/x/test_y.py::test_z[a]``)."""
    path = nodeid.split("::", 1)[0]
    return BROWSER if path.startswith(BROWSER) else path


class FileUnits(LoadFileScheduling):
    """``--dist loadfile`` with ``tests/browser/`` as one unit, in collection order."""

    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        config.option.loadscopereorder = False  # keep slow_units_first's order
        super().__init__(config, log)

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)


def slow_units_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with the units holding most slow tests first; sorted() is stable, so
    a unit's tests, and units of equal weight, keep their order."""
    weight: dict[str, int] = {}
    for item in items:
        unit = unit_of(item.nodeid)
        slow = unit == BROWSER or item.get_closest_marker("slow") is not None
        weight[unit] = weight.get(unit, 0) + slow
    return sorted(items, key=lambda item: -weight[unit_of(item.nodeid)])
