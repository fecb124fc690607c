"""Lease and retry policy as pure functions: bounded backoff, releases, clock jumps."""

from __future__ import annotations

import math
import random

from corral.domain.leases import ClockWatch, spared
from corral.domain.retry import RetryPolicy

NOW = 1_000_000.0


def test_item10_backoff_is_bounded_for_any_attempt_count() -> None:
    policy = RetryPolicy(base_seconds=1.0, max_seconds=300.0, jitter=0.1)
    rng = random.Random(3)
    for attempts in (0, 1, 2, 9, 1024, 1025, 1026, 10**6, 10**18):
        delay = policy.delay(attempts, rng)
        assert math.isfinite(delay) and 0.0 <= delay <= 330.0, attempts
    huge = RetryPolicy(base_seconds=1e308, max_seconds=float("inf"), jitter=0.0)
    assert huge.delay(5000) == 86400.0  # never more than a day, whatever the policy says


def test_item12_each_lease_is_spared_its_own_period_after_start() -> None:
    watch = ClockWatch.start(wall=NOW, mono=100.0)
    assert watch.spare_longer_than(60.0) == 0.0
    later = watch.observe(NOW + 3.0, 103.0)
    assert later.spare_longer_than(60.0) == 3.0
    assert not spared(3.0, later.spare_longer_than(60.0))  # a 3 s lease: reapable now
    assert spared(30.0, later.spare_longer_than(60.0))  # a 30 s lease: not yet
    assert later.observe(NOW + 60.0, 160.0).spare_longer_than(60.0) is None  # grace is over
    assert watch.spare_longer_than(0.0) is None  # no grace configured


def test_item12_a_forward_clock_jump_restarts_the_grace() -> None:
    settled = ClockWatch.start(NOW, 100.0).observe(NOW + 500.0, 600.0)
    assert settled.spare_longer_than(60.0) is None
    jumped = settled.observe(NOW + 500.0 + 1.0 + 3600.0, 601.0)  # an hour in one second
    assert jumped.since == 601.0 and jumped.spare_longer_than(60.0) == 0.0
    assert jumped.observe(NOW + 4110.0, 611.0).spare_longer_than(60.0) == 10.0
    drift = settled.observe(NOW + 501.5, 601.0)  # half a second of slew is no jump
    assert drift.spare_longer_than(60.0) is None
    back = settled.observe(NOW, 601.0)  # a backward step expires nothing early: no grace
    assert back.spare_longer_than(60.0) is None


def test_item12_a_slow_clock_reading_is_not_a_jump() -> None:
    watch = ClockWatch.start(NOW, 100.0)
    # The database answered 3 s late (a busy pool): its time is 3 s past ``mono``,
    # but the reading settled at 104, so the wall gained nothing on the monotonic clock.
    slow = watch.observe(NOW + 4.0, mono=101.0, settled=104.0)
    assert slow.since == 100.0
    assert watch.observe(NOW + 10.0, mono=101.0, settled=104.0).since == 104.0  # a real jump
