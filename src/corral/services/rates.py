"""Recent throughput and queue wait, counted in the database every replica shares.

The queues page wants "jobs/s over the last minutes" and the submit-to-start
wait without an external monitoring stack, and wants the same figures whichever
replica draws it. Each replica counts claims, finishes and waits in its own
Prometheus counters (no I/O on the hot path); ``Tally`` turns what they gained
since the last time into a few numbers, which the container adds to the
database's ``activity`` table once a second (one small write when anything
happened, none when idle). Slots are ``INTERVAL`` seconds of wall-clock time,
so every replica adds to the same slots; slot ``ALL_TIME`` keeps the totals.

The page reads the last ``KEEP`` slots: rates per slot (the newest slot is the
one under way, over the seconds it has run), and wait percentiles *estimated*
from the summed histogram buckets (linear interpolation inside a bucket, like
PromQL's ``histogram_quantile``), so they are only as fine as the bucket bounds.
The replica drawing the page first adds its own pending counts; another
replica's are at most ``FLUSH_EVERY`` late.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from prometheus_client.metrics_core import Metric

from corral.auth.policy import Action, require
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.services.metrics import Metrics
from corral.store.base import Store
from corral.store.counts_port import ALL_TIME

INTERVAL = 10.0  # seconds per slot
KEEP = 60  # slots shown: ten minutes at INTERVAL
FLUSH_EVERY = 1.0  # seconds between a replica's additions to the shared slots
QUANTILES = (0.5, 0.9, 0.99)
CLAIMED, FINISHED, WAIT = "claimed", "finished", "wait:"  # names in the activity table
_REQUEUED = JobStatus.PENDING.value  # a retry goes back to the queue: not a finish


@dataclass(frozen=True, slots=True)
class Interval:
    """Rates over one slot; ``age`` is how long ago it ended (0: the slot under way)."""

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
    intervals: list[Interval]  # oldest first, from the first slot with any activity
    interval: float
    window: float  # seconds the slots shown cover
    recent: Latency  # over the window
    overall: Latency  # since the database began counting


class Tally:
    """This process's counters as the activity table names them, and what of them was
    already added there; ``pending`` is the difference."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self.bounds, self.wait_names = _bucket_names(metrics)
        self._sent = self.read()

    def read(self) -> dict[str, int]:
        metrics = self._metrics
        counts = {
            CLAIMED: int(_total(metrics.jobs_claimed.collect(), "_total")),
            FINISHED: int(_total(metrics.jobs_finished.collect(), "_total", skip=_REQUEUED)),
        }
        cumulative = [count for _, count in _buckets(metrics)]
        below = [0.0, *cumulative[:-1]]
        for name, count, under in zip(self.wait_names, cumulative, below, strict=True):
            counts[name] = int(count - under)  # this bucket's own count
        return counts

    def pending(self) -> dict[str, int]:
        gained = {name: count - self._sent.get(name, 0) for name, count in self.read().items()}
        return {name: count for name, count in gained.items() if count}

    def sent(self, counts: Mapping[str, int]) -> None:
        for name, count in counts.items():
            self._sent[name] = self._sent.get(name, 0) + count


class RateService:
    """The queues page's throughput and wait figures, behind the READ right."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        interval: float = INTERVAL,
        keep: int = KEEP,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self.keep = keep
        self.tally = Tally(metrics)
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()  # one addition at a time, or two would send the same

    async def flush(self) -> None:
        """Add what this process counted since the last flush to the current slot."""
        async with self._lock:
            counts = self.tally.pending()
            if counts:
                await self._store.add_activity(self.slot(self._clock()), counts)
                self.tally.sent(counts)

    async def forget(self) -> int:
        """Delete slots older than the window (the totals stay)."""
        return await self._store.forget_activity(self.slot(self._clock()) - self.keep)

    def slot(self, at: float) -> int:
        return int(at // self.interval)

    async def activity(self, principal: Principal) -> Activity:
        require(principal, Action.READ)
        await self.flush()
        now = self._clock()
        current = self.slot(now)
        first = current - self.keep + 1
        slots: dict[int, dict[str, int]] = defaultdict(dict)
        for slot, name, count in await self._store.read_activity(first):
            slots[slot][name] = count
        totals = slots.pop(ALL_TIME, {})
        bounds, names = self.tally.bounds, self.tally.wait_names
        recent = [sum(s.get(n, 0) for s in slots.values()) for n in names]
        return Activity(
            intervals=self._intervals(slots, first, current, now),
            interval=self.interval,
            window=self.interval * self.keep,
            recent=latency(bounds, list(accumulate(recent))),
            overall=latency(bounds, list(accumulate(totals.get(n, 0) for n in names))),
        )

    def _intervals(
        self, slots: Mapping[int, Mapping[str, int]], first: int, current: int, now: float
    ) -> list[Interval]:
        busy = [s for s, counts in slots.items() if counts.get(CLAIMED) or counts.get(FINISHED)]
        if not busy:
            return []
        spans = []
        for slot in range(max(first, min(busy)), current + 1):
            start, end = slot * self.interval, (slot + 1) * self.interval
            seconds = self.interval if slot < current else max(now - start, 1.0)
            counts = slots.get(slot, {})
            spans.append(
                Interval(
                    age=max(0.0, now - end) if slot < current else 0.0,
                    seconds=seconds,
                    started=counts.get(CLAIMED, 0) / seconds,
                    finished=counts.get(FINISHED, 0) / seconds,
                )
            )
        return spans


def _bucket_names(metrics: Metrics) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The ``queue_wait`` bounds in order, and the activity table's name for each bucket."""
    pairs = sorted(
        (float(sample.labels["le"]), WAIT + sample.labels["le"])
        for family in metrics.queue_wait.collect()
        for sample in family.samples
        if sample.name.endswith("_bucket")
    )
    return tuple(b for b, _ in pairs), tuple(n for _, n in pairs)


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
