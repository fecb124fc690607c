"""One priority scale for every dialect.

The executor-queue classes (foreground/background/best_effort) and CMD
Executor's levels (high/normal/low) are two names for the same three rungs,
so a job submitted through one dialect sorts correctly against jobs from any
other. Higher numbers are claimed first.
"""

from __future__ import annotations

from corral.errors import InvalidInput

HIGH = 2
NORMAL = 1
LOW = 0

_BY_NAME: dict[str, int] = {
    "foreground": HIGH,
    "high": HIGH,
    "background": NORMAL,
    "normal": NORMAL,
    "best_effort": LOW,
    "low": LOW,
}

QUEUE_CLASSES: dict[int, str] = {HIGH: "foreground", NORMAL: "background", LOW: "best_effort"}
LEVELS: dict[int, str] = {HIGH: "high", NORMAL: "normal", LOW: "low"}


def parse_priority(name: str) -> int:
    try:
        return _BY_NAME[name]
    except KeyError:
        allowed = ", ".join(sorted(_BY_NAME))
        raise InvalidInput(f"priority must be one of {allowed}", field="priority") from None


def queue_class(value: int) -> str:
    """The executor-queue name of a priority value."""
    return QUEUE_CLASSES[value]


def level(value: int) -> str:
    """The CMD Executor name of a priority value."""
    return LEVELS[value]
