"""Durations people type: ``90d``, ``12h``, ``30m``, ``45s`` or plain seconds."""

from __future__ import annotations

from corral.cli.config import fail

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def seconds(text: str | None, option: str) -> int | None:
    """``None`` stays None (no expiry); anything else is a positive whole number of seconds."""
    if text is None:
        return None
    text = text.strip().lower()
    number, unit = (text[:-1], text[-1]) if text[-1:] in UNITS else (text, "s")
    if not number.isdigit() or int(number) == 0:
        fail(f"{option} expects a duration such as 90d, 12h, 30m or 3600, got {text!r}", 2)
    return int(number) * UNITS[unit]
