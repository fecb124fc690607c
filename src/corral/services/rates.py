"""Recent throughput and queue wait, from this process's own Prometheus counters.

The queues page wants "jobs/s over the last minutes" without an external
monitoring stack. Counters only ever grow, so a rate needs two readings and
the time between them: ``RateSampler`` keeps a bounded ring of readings
(claimed, finished, and the ``queue_wait`` histogram's bucket counts), taken
every ``INTERVAL`` seconds by the container. That is a few dozen integers per
reading, no I/O and no store query, so it costs nothing measurable.

Everything here is per replica: each process counts only the claims and
finishes it served. Percentiles are *estimates* from histogram buckets
(linear interpolation inside a bucket, like PromQL's ``histogram_quantile``),
so they are only as fine as the bucket bounds.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from prometheus_client.metrics_core import Metric

from corral.auth.policy import Action, require
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.services.metrics import Metrics

INTERVAL = 10.0  # seconds between readings
KEEP = 60  # intervals kept: ten minutes at INTERVAL
QUANTILES = (0.5, 0.9, 0.99)
_REQUEUED = JobStatus.PENDING.value  # a retry goes back to the queue: not a finish


@dataclass(frozen=True, slots=True)
class Reading:
    at: float  # monotonic seconds
    claimed: float
    finished: float
    buckets: tuple[float, ...]  # cumulative counts, one per bound of ``queue_wait``


@dataclass(frozen=True, slots=True)
class Interval:
    """Rates over one span between two readings; ``age`` is how long ago it ended."""

    age: float
    seconds: float
    started: float  # claims per second
    finished: float  # final states per second


@dataclass(frozen=True, slots=True)
class Latency:
    """Submit-to-start wait estimated from buckets; ``None`` when nothing was claimed."""

    count: int
    quantiles: dict[float, float | None]
    ceiling: float  # the largest finite bucket bound: an estimate there means "at least"


@dataclass(frozen=True, slots=True)
class Activity:
    intervals: list[Interval]  # oldest first
    interval: float
    window: float  # seconds the full ring covers
    recent: Latency  # since the oldest reading kept: about the window
    overall: Latency  # since this process started


class RateSampler:
    """A ring of counter readings; ``record`` takes ``now`` so tests move a clock."""

    def __init__(self, metrics: Metrics, keep: int = KEEP) -> None:
        self._metrics = metrics
        self._readings: deque[Reading] = deque(maxlen=keep + 1)  # n readings, n - 1 intervals
        self.bounds = bucket_bounds(metrics)

    def record(self, now: float) -> None:
        self._readings.append(self.read(now))

    def read(self, now: float) -> Reading:
        claimed = _total(self._metrics.jobs_claimed.collect(), "_total")
        finished = _total(self._metrics.jobs_finished.collect(), "_total", skip=_REQUEUED)
        return Reading(now, claimed, finished, bucket_counts(self._metrics))

    def intervals(self) -> list[Interval]:
        if not self._readings:
            return []
        last = self._readings[-1].at
        spans: list[Interval] = []
        for before, after in pairwise(self._readings):
            seconds = after.at - before.at
            if seconds <= 0:
                continue
            spans.append(
                Interval(
                    age=last - after.at,
                    seconds=seconds,
                    started=max(0.0, after.claimed - before.claimed) / seconds,
                    finished=max(0.0, after.finished - before.finished) / seconds,
                )
            )
        return spans

    def since_oldest(self, current: tuple[float, ...]) -> tuple[float, ...]:
        """Bucket counts from the oldest reading kept up to ``current`` (now): the window,
        up to date to the last claim rather than to the last reading."""
        if not self._readings:
            return current
        first = self._readings[0].buckets
        return tuple(max(0.0, b - a) for a, b in zip(first, current, strict=True))


class RateService:
    """The queues page's throughput and wait figures, behind the READ right."""

    def __init__(self, metrics: Metrics, interval: float = INTERVAL, keep: int = KEEP) -> None:
        self.interval = interval
        self.keep = keep
        self.sampler = RateSampler(metrics, keep)
        self._metrics = metrics

    def activity(self, principal: Principal) -> Activity:
        require(principal, Action.READ)
        bounds = self.sampler.bounds
        current = bucket_counts(self._metrics)
        return Activity(
            intervals=self.sampler.intervals(),
            interval=self.interval,
            window=self.interval * self.keep,
            recent=latency(bounds, self.sampler.since_oldest(current)),
            overall=latency(bounds, current),
        )


def bucket_bounds(metrics: Metrics) -> tuple[float, ...]:
    return tuple(bound for bound, _ in _buckets(metrics))


def bucket_counts(metrics: Metrics) -> tuple[float, ...]:
    return tuple(count for _, count in _buckets(metrics))


def _buckets(metrics: Metrics) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) pairs, ``+Inf`` last, as Prometheus exposes them."""
    pairs = [
        (float(sample.labels["le"]), sample.value)
        for family in metrics.queue_wait.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    ]
    return sorted(pairs)


def _total(families: Iterable[Metric], suffix: str, skip: str | None = None) -> float:
    """Sum a counter's samples over its labels, leaving out one ``status`` if asked."""
    total = 0.0
    for family in families:
        for sample in family.samples:
            skipped = skip is not None and sample.labels.get("status") == skip
            if sample.name.endswith(suffix) and not skipped:
                total += sample.value
    return total


def latency(bounds: Sequence[float], cumulative: Sequence[float]) -> Latency:
    finite = [b for b in bounds if math.isfinite(b)]
    count = int(cumulative[-1]) if cumulative else 0
    return Latency(
        count=count,
        quantiles={q: quantile(q, bounds, cumulative) for q in QUANTILES},
        ceiling=finite[-1] if finite else 0.0,
    )


def quantile(q: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """PromQL's ``histogram_quantile``: find the bucket holding rank ``q * total`` and
    interpolate linearly inside it; the ``+Inf`` bucket answers its lower bound."""
    total = cumulative[-1] if cumulative else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank and count > below:
            if not math.isfinite(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
