"""Lease and retry policy as pure functions: bounded backoff, releases, clock jumps."""

from __future__ import annotations

import math
import random

from corral.domain.retry import RetryPolicy


def test_item10_backoff_is_bounded_for_any_attempt_count() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0, jitter=0.1)
    rng = random.Random(3)
    for attempts in (0, 1, 2, 9, 1024, 1025, 1026, 10**6, 10**18):
        delay = policy.delay(attempts, rng)
        assert math.isfinite(delay) and 0.0 <= delay <= 330.0, attempts
    huge = RetryPolicy(base_seconds=1e308, max_seconds=float("inf"), jitter=0.0)
    assert huge.delay(5000) == 86400.0  # never more than a day, whatever the policy says
