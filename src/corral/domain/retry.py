"""Retry and lease policy as pure functions of ``now``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# 2**62 seconds is far past any cap; a larger exponent only risks OverflowError
# (a float overflows at 2**1024, which a job released ~1,025 times used to reach).
MAX_EXPONENT = 62
# No backoff is ever longer than a day, whatever the policy says.
MAX_DELAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts: base * 2**(attempt-1), capped, with jitter."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt: finite, never negative, never above
        ``max_seconds`` (nor ``MAX_DELAY``) plus its jitter, for any ``attempts_made``."""
        exponent = min(max(0, attempts_made - 1), MAX_EXPONENT)
        cap = min(self.max_seconds, MAX_DELAY)
        raw = min(cap, self.base_seconds * 2.0**exponent)
        if not math.isfinite(raw) or raw < 0:
            raw = cap
        spread = raw * min(max(self.jitter, 0.0), 1.0)
        offset: float = (rng or random.Random()).uniform(-spread, spread)
        return max(0.0, raw + offset)


def retries_left(attempts_made: int, max_retries: int) -> bool:
    """A job may run ``max_retries + 1`` times in all."""
    return attempts_made <= max_retries


def lease_expiry(now: float, lease_seconds: float) -> float:
    return now + lease_seconds
