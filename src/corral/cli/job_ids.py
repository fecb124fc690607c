"""Job ids people can type: short ids in lists, unique prefixes everywhere an id is taken.

A job id is a UUID (36 characters); lists show its first ``SHORT`` characters, as
the dashboard does, and every command accepts any prefix of at least ``SHORT``
characters. The server finds the jobs whose id starts with the prefix through an
index (``GET /api/v1/jobs?id_prefix=``), so resolving costs one indexed query.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from corral.cli.config import fail

if TYPE_CHECKING:
    from corral.client.client import JsonClient

SHORT = 8
FULL_LENGTH = 36
CANDIDATES_SHOWN = 10
_ID_CHARS = re.compile(r"^[0-9A-Za-z-]+$")
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def short(job_id: str) -> str:
    return job_id[:SHORT]


def resolve(client: JsonClient, typed: str) -> str:
    """The full id of the one job whose id starts with ``typed``; exits with a clear
    line when none does, or when several do (naming them)."""
    text = typed.strip().lower()
    if len(text) >= FULL_LENGTH:
        return text
    if not _ID_CHARS.match(text):
        fail(f"no job with id {typed!r}", 2)
    if len(text) < SHORT:
        fail(f"job id prefix {typed!r} is too short: give at least {SHORT} characters", 2)
    found = client.list(id_prefix=text, limit=CANDIDATES_SHOWN + 1)
    if not found:
        fail(f"no job with id starting {typed!r}", 2)
    if len(found) > 1:
        shown = found[:CANDIDATES_SHOWN]
        more = " and more" if len(found) > CANDIDATES_SHOWN else ""
        names = ", ".join(_candidate(row) for row in shown)
        fail(f"job id prefix {typed!r} is ambiguous: {names}{more}", 2)
    return str(found[0]["id"])


def _candidate(row: dict[str, object]) -> str:
    label = row.get("name") or row.get("command") or ""
    text = str(label)[:30]
    return f"{row['id']} ({row.get('status')}{', ' + text if text else ''})"


def parse_since(text: str, now: float | None = None) -> str:
    """``--since 2h`` (s, m, h, d, w ago) or an ISO 8601 time, as an ISO time in UTC."""
    value = text.strip()
    match = _AGO.match(value.lower())
    if match:
        ago = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        moment = datetime.fromtimestamp((time.time() if now is None else now) - ago, UTC)
        return moment.isoformat()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--since: {text!r} is neither a duration such as 2h or 30m nor an ISO time", 2)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a bare time is UTC, like every time shown
    return parsed.astimezone(UTC).isoformat()
