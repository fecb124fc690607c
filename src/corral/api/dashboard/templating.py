"""The Jinja2 environment: autoescaped templates and the few filters pages share."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.templating import Jinja2Templates

from corral.api.timefmt import iso

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.autoescape = True  # every template, whatever its name: output is text


def ago(ts: float | None) -> str:
    """A short human age ("4 s", "3 min"); the exact time rides along in a title."""
    if ts is None:
        return "—"
    seconds = max(0.0, time.time() - ts)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


TEMPLATES.env.filters["iso"] = iso
TEMPLATES.env.filters["ago"] = ago
TEMPLATES.env.filters["duration"] = duration
