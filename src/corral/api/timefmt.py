"""Timestamps on the wire: ISO 8601 in UTC with a trailing Z, as every document shows."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def iso(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


# Answers repeat their times: the jobs of one claim share its start and lease expiry,
# those of one submit their creation. A few microseconds each, on every claim.
@lru_cache(maxsize=1024)
def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
