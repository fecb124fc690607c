"""Cron expressions in a time zone: when a schedule's ticks fall.

Parsing and stepping are croniter's (a maintained library, not a parser of our
own); this module only fixes how Corral calls it. Five fields are the usual
minute..weekday form; six put a seconds field first (``*/10 * * * * *``). Ticks
are computed on zone-aware datetimes, so daylight-saving changes follow the zone
by croniter's documented rule: a wall time the zone skips (02:30 on a
spring-forward night in Europe/Berlin) fires once, at the first instant after the
gap (03:00); a wall time the zone repeats fires at each of its instants.
Pure: no clock is read here; every function takes the time it reasons from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

from corral.errors import InvalidInput

MAX_CRON_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Cron:
    """A validated expression and zone; ticks are epoch seconds."""

    expression: str
    timezone: str

    @classmethod
    def parse(cls, expression: str, timezone: str) -> Cron:
        """Refuse what croniter refuses, and any field count but five or six."""
        text = " ".join(expression.split())
        if not text or len(text) > MAX_CRON_LENGTH or len(text.split(" ")) not in (5, 6):
            raise InvalidInput(
                "cron must have 5 fields (minute hour day month weekday), or 6 with "
                "a leading seconds field",
                field="cron",
            )
        try:
            it = croniter(text, datetime.now(UTC), second_at_beginning=True)
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidInput(f"invalid cron expression {text!r}: {exc}", field="cron") from None
        try:  # valid fields can still name a day that never comes (30 February)
            it.get_next(float)
        except (CroniterError, ValueError) as exc:
            raise InvalidInput(f"cron {text!r} never fires: {exc}", field="cron") from None
        zone_of(timezone)
        return cls(text, timezone)

    def _iter(self, start: float) -> croniter:
        moment = datetime.fromtimestamp(start, zone_of(self.timezone))
        return croniter(self.expression, moment, second_at_beginning=True)

    def next_after(self, moment: float) -> float:
        """The first tick strictly after ``moment``."""
        return float(self._iter(moment).get_next(float))

    def upcoming(self, moment: float, count: int) -> list[float]:
        """The next ``count`` ticks strictly after ``moment``."""
        it = self._iter(moment)
        return [float(it.get_next(float)) for _ in range(count)]

    def latest_at_or_before(self, moment: float) -> float:
        """The newest tick at or before ``moment``."""
        previous = float(self._iter(moment).get_prev(float))
        following = self.next_after(previous)
        return following if following <= moment else previous

    def before(self, tick: float) -> float:
        """The tick just before ``tick``."""
        return float(self._iter(tick).get_prev(float))


def zone_of(name: str) -> ZoneInfo:
    """The IANA zone, or a 400 naming the field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown timezone: {name!r}", field="timezone") from None
