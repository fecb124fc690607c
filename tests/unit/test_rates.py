"""The rate sampler and the bucket percentiles, on a clock the test moves."""

from __future__ import annotations

import math

import pytest

from corral.domain.principals import Principal, Role
from corral.errors import Forbidden
from corral.services.metrics import Metrics
from corral.services.rates import RateSampler, RateService, latency, quantile

VIEWER = Principal(id="v", name="viewer", role=Role.VIEWER)
WORKER = Principal(id="w", name="worker", role=Role.WORKER)


def finish(metrics: Metrics, status: str, n: int = 1) -> None:
    metrics.jobs_finished.labels(status=status).inc(n)


def test_no_rates_until_two_readings() -> None:
    sampler = RateSampler(Metrics())
    assert sampler.intervals() == []
    sampler.record(100.0)
    assert sampler.intervals() == []


def test_rates_follow_the_counters_per_interval() -> None:
    metrics = Metrics()
    sampler = RateSampler(metrics)
    sampler.record(100.0)
    metrics.jobs_claimed.inc(20)
    finish(metrics, "completed", 8)
    finish(metrics, "failed", 2)
    sampler.record(110.0)
    metrics.jobs_claimed.inc(5)
    sampler.record(120.0)
    first, second = sampler.intervals()
    assert (first.started, first.finished, first.seconds, first.age) == (2.0, 1.0, 10.0, 10.0)
    assert (second.started, second.finished, second.age) == (0.5, 0.0, 0.0)


def test_a_requeue_is_not_a_finish() -> None:
    metrics = Metrics()
    sampler = RateSampler(metrics)
    sampler.record(0.0)
    finish(metrics, "pending", 7)  # retried: back in the queue
    finish(metrics, "cancelled", 1)
    sampler.record(10.0)
    assert [s.finished for s in sampler.intervals()] == [0.1]


def test_the_ring_is_bounded_and_keeps_the_newest() -> None:
    metrics = Metrics()
    sampler = RateSampler(metrics, keep=3)
    for tick in range(10):
        metrics.jobs_claimed.inc(tick)
        sampler.record(tick * 10.0)
    spans = sampler.intervals()
    assert len(spans) == 3
    assert [s.started for s in spans] == [0.7, 0.8, 0.9]
    assert [s.age for s in spans] == [20.0, 10.0, 0.0]


def test_a_clock_that_does_not_move_gives_no_interval() -> None:
    sampler = RateSampler(Metrics())
    sampler.record(5.0)
    sampler.record(5.0)
    assert sampler.intervals() == []


def test_quantiles_interpolate_inside_buckets_like_promql() -> None:
    bounds = (1.0, 2.0, 4.0, math.inf)
    cumulative = (10.0, 20.0, 20.0, 20.0)
    assert quantile(0.5, bounds, cumulative) == 1.0
    assert quantile(0.75, bounds, cumulative) == 1.5
    assert quantile(0.25, bounds, cumulative) == 0.5
    assert quantile(0.5, bounds, (0.0, 0.0, 0.0, 0.0)) is None


def test_the_open_top_bucket_answers_its_lower_bound() -> None:
    bounds = (1.0, 2.0, math.inf)
    figures = latency(bounds, (1.0, 1.0, 10.0))
    assert figures.count == 10 and figures.ceiling == 2.0
    assert figures.quantiles[0.99] == 2.0


def test_activity_reads_waits_over_the_window_and_since_start() -> None:
    metrics = Metrics()
    service = RateService(metrics, interval=10.0, keep=6)
    wait = metrics.queue_wait
    wait.observe(30.0)  # before the window's oldest reading: since start only
    service.sampler.record(0.0)
    for _ in range(9):
        wait.observe(0.002)
    activity = service.activity(VIEWER)
    assert activity.window == 60.0 and activity.interval == 10.0
    assert activity.recent.count == 9 and activity.overall.count == 10
    recent_p99 = activity.recent.quantiles[0.99]
    assert recent_p99 is not None and recent_p99 <= 0.0025
    overall_p99 = activity.overall.quantiles[0.99]
    assert overall_p99 is not None and 10.0 < overall_p99 <= 60.0


def test_activity_needs_the_read_right() -> None:
    with pytest.raises(Forbidden):
        RateService(Metrics()).activity(WORKER)
