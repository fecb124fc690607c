"""The queues page's rates and waits, added by replicas to shared slots, on both stores.

Each "replica" is a ``RateService`` with its own Prometheus counters over one store,
as two servers on one database are; the clock is an argument.
"""

from __future__ import annotations

import pytest

from corral.domain.principals import Principal, Role
from corral.errors import Forbidden
from corral.services.metrics import Metrics
from corral.services.rates import CLAIMED, FINISHED, RateService, Tally
from corral.store.base import Store

VIEWER = Principal(id="v", name="viewer", role=Role.VIEWER)
WORKER = Principal(id="w", name="worker", role=Role.WORKER)
T0 = 1_700_000_000.0  # a slot boundary (a multiple of ten seconds)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def claimed(metrics: Metrics, n: int, wait: float = 0.002) -> None:
    metrics.jobs_claimed.inc(n)
    for _ in range(n):
        metrics.queue_wait.observe(wait)


def finished(metrics: Metrics, status: str, n: int = 1) -> None:
    metrics.jobs_finished.labels(status=status).inc(n)


def test_the_tally_is_what_grew_since_the_last_addition() -> None:
    metrics = Metrics()
    tally = Tally(metrics)
    assert tally.pending() == {}
    claimed(metrics, 3)
    finished(metrics, "completed", 2)
    finished(metrics, "pending", 5)  # retried: back in the queue, not a finish
    pending = tally.pending()
    assert pending == {CLAIMED: 3, FINISHED: 2, "wait:0.0025": 3}
    tally.sent(pending)
    assert tally.pending() == {}
    claimed(metrics, 1, wait=30.0)
    assert tally.pending() == {CLAIMED: 1, "wait:60.0": 1}


async def test_rates_per_slot_and_the_slot_under_way(store: Store) -> None:
    clock = Clock()
    metrics = Metrics()
    rates = RateService(store, metrics, clock=clock)
    assert (await rates.activity(VIEWER)).intervals == []
    claimed(metrics, 20)
    finished(metrics, "completed", 10)
    clock.now = T0 + 5
    await rates.flush()
    claimed(metrics, 4)
    clock.now = T0 + 12  # the next slot, two seconds in; the page adds what is pending
    activity = await rates.activity(VIEWER)
    first, second = activity.intervals
    assert (first.started, first.finished, first.seconds, first.age) == (2.0, 1.0, 10.0, 2.0)
    assert (second.started, second.finished, second.seconds, second.age) == (2.0, 0.0, 2.0, 0.0)
    assert activity.window == 600.0 and activity.interval == 10.0


async def test_replicas_add_to_the_same_slots_and_read_the_same_figures(store: Store) -> None:
    clock = Clock()
    metrics_a, metrics_b = Metrics(), Metrics()
    a = RateService(store, metrics_a, clock=clock)
    b = RateService(store, metrics_b, clock=clock)
    claimed(metrics_a, 30, wait=0.002)
    claimed(metrics_b, 10, wait=4.0)
    finished(metrics_b, "failed", 10)
    clock.now = T0 + 15
    await b.flush()
    seen_by_a, seen_by_b = await a.activity(VIEWER), await b.activity(VIEWER)
    assert seen_by_a == seen_by_b
    [span] = seen_by_a.intervals
    assert (span.started, span.finished) == (40 / 5, 10 / 5)
    assert seen_by_a.recent.count == 40
    p50, p99 = seen_by_a.recent.quantiles[0.5], seen_by_a.recent.quantiles[0.99]
    assert p50 is not None and p50 <= 0.0025
    assert p99 is not None and 2.5 < p99 <= 5.0


async def test_old_slots_leave_the_window_but_not_the_totals(store: Store) -> None:
    clock = Clock()
    metrics = Metrics()
    rates = RateService(store, metrics, clock=clock)
    claimed(metrics, 5, wait=30.0)
    await rates.flush()
    clock.now = T0 + 3600  # an hour on
    claimed(metrics, 9, wait=0.002)
    await rates.flush()
    assert await rates.forget() == 2  # the old slot's claims and its wait bucket
    activity = await rates.activity(VIEWER)
    assert activity.recent.count == 9 and activity.overall.count == 14
    # nothing drawn from before; the slot under way counts at least one second
    assert [s.started for s in activity.intervals] == [9.0]


async def test_the_figures_need_the_read_right(store: Store) -> None:
    with pytest.raises(Forbidden):
        await RateService(store, Metrics()).activity(WORKER)
