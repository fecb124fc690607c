"""The bucket percentiles (the activity slots are tested on real stores in tests/contract)."""

from __future__ import annotations

import math

from corral.services.rates import latency, quantile


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
