"""Retry and lease policy as pure functions of ``now``."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts: base * 2**(attempt-1), capped, with jitter."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        raw = min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempts_made - 1))
        spread = raw * self.jitter
        offset: float = (rng or random.Random()).uniform(-spread, spread)
        return max(0.0, raw + offset)


def retries_left(attempts_made: int, max_retries: int) -> bool:
    """A job may run ``max_retries + 1`` times in all."""
    return attempts_made <= max_retries


def lease_expiry(now: float, lease_seconds: float) -> float:
    return now + lease_seconds
