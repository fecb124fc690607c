"""Rate-limit budgets shared by replicas: allowances taken from the store's windows.

Single-replica behaviour runs on both stores; "replicas" are two ``SharedCounting``s,
each over its own connection pool to one PostgreSQL database, as two servers are.
Clocks are arguments, so windows end when a test says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from limits import parse

from corral.services.allowances import CHUNK_SHARE, PEEK_EVERY, SharedCounting
from corral.store.base import Store
from corral.store.postgres.store import PostgresStore

T0 = 60.0 * 28_333_333  # a minute starts here


class Clock:
    def __init__(self, now: float = T0 + 5) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Takes:
    """A real store, with its round trips on the rate-limit path counted."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.takes = 0
        self.reads = 0

    async def add_to_window(self, *args: Any) -> int:
        self.takes += 1
        return await self._store.add_to_window(*args)

    async def window_count(self, *args: Any) -> int:
        self.reads += 1
        return await self._store.window_count(*args)


def counting(store: Store | Takes, clock: Clock) -> SharedCounting:
    return SharedCounting(cast(Store, store), clock=clock, monotonic=clock)


@pytest.fixture
async def replicas(pg_dsn: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one PostgreSQL database: what two server replicas hold."""
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_one_replica_admits_exactly_the_limit_and_counts_down(store: Store) -> None:
    clock = Clock()
    shared, rate = counting(store, clock), parse("10/minute")
    counts = [await shared.hit(rate, "principal", "p") for _ in range(12)]
    assert [c.allowed for c in counts] == [True] * 10 + [False] * 2
    assert [c.remaining for c in counts] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]
    assert {c.reset for c in counts} == {T0 + 60}
    assert await shared.exhausted(rate, "principal", "p")


async def test_a_new_window_starts_afresh(store: Store) -> None:
    clock = Clock()
    shared, rate = counting(store, clock), parse("2/minute")
    assert [(await shared.hit(rate, "principal", "p")).allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    clock.now = T0 + 60
    count = await shared.hit(rate, "principal", "p")
    assert (count.allowed, count.remaining, count.reset) == (True, 1, T0 + 120)


async def test_a_refund_goes_back_to_the_shared_count(store: Store) -> None:
    clock = Clock()
    shared, rate = counting(store, clock), parse("1/minute")
    assert (await shared.hit(rate, "login-ip", "10.0.0.1")).allowed
    assert not (await shared.hit(rate, "login-ip", "10.0.0.1")).allowed
    await shared.refund(rate, "login-ip", "10.0.0.1")
    assert await store.window_count("login-ip", "10.0.0.1", int(T0)) == 0
    assert (await shared.hit(rate, "login-ip", "10.0.0.1")).allowed


async def test_takes_are_amortised_over_many_requests(store: Store) -> None:
    """The hot path: a thousand requests of one principal, a dozen round trips."""
    spy = Takes(store)
    shared, rate = counting(spy, Clock()), parse("100000/minute")
    for _ in range(1000):
        assert (await shared.hit(rate, "principal", "busy")).allowed
    assert spy.takes <= 11  # chunks of 1, 2, 4, ... 1024
    # concurrent requests of one key wait on one take instead of each making their own
    spy.takes = 0
    await asyncio.gather(*(shared.hit(rate, "principal", "burst") for _ in range(50)))
    assert spy.takes <= 6


async def test_two_replicas_admit_the_limit_once_between_them(
    replicas: tuple[Store, Store],
) -> None:
    clock = Clock()
    a, b = (counting(store, clock) for store in replicas)
    rate = parse("64/minute")  # chunks of at most 2
    allowed = 0
    for i in range(100):
        replica = a if i % 2 else b
        allowed += (await replica.hit(rate, "principal", "p")).allowed
    assert allowed == 64
    assert not (await a.hit(rate, "principal", "p")).allowed
    assert not (await b.hit(rate, "principal", "p")).allowed


async def test_replicas_racing_never_admit_more_than_the_limit(
    replicas: tuple[Store, Store],
) -> None:
    clock = Clock()
    a, b = (counting(store, clock) for store in replicas)
    rate = parse(f"{10 * CHUNK_SHARE}/minute")
    counts = await asyncio.gather(
        *(r.hit(rate, "principal", "p") for _ in range(200) for r in (a, b))
    )
    # Never more than the limit; fewer by at most what one replica may still hold when
    # the other finds the window spent and tells it so (the module's stated bound: a
    # chunk of limit / CHUNK_SHARE). Equality held on a quiet machine; under load the
    # notification can overtake the last requests to the replica holding units.
    allowed = sum(c.allowed for c in counts)
    assert 10 * CHUNK_SHARE - 10 <= allowed <= 10 * CHUNK_SHARE


async def test_a_window_spent_on_one_replica_is_announced_to_the_other(
    replicas: tuple[Store, Store],
) -> None:
    """The check before authentication, on every request: b learns, without a query,
    that failures counted through a spent an address's budget (IPv6: colons)."""
    clock = Clock()
    store_b = Takes(replicas[1])
    a, b = counting(replicas[0], clock), counting(store_b, clock)
    replicas[1].add_listener(b.heard)
    rate, ip = parse("3/minute"), "2001:db8::9"
    assert not await b.exhausted(rate, "auth-failure", ip)  # b reads once
    for _ in range(3):
        assert (await a.hit(rate, "auth-failure", ip)).allowed
    for _ in range(500):  # the announcement travels through PostgreSQL: milliseconds
        if await b.exhausted(rate, "auth-failure", ip):
            break
        await asyncio.sleep(0.01)
    assert await b.exhausted(rate, "auth-failure", ip)
    assert store_b.reads == 1 and store_b.takes == 0
    assert not (await b.hit(rate, "auth-failure", ip)).allowed
    assert (await b.peek(rate, "auth-failure", ip)).remaining == 0
    assert (await b.peek(rate, "auth-failure", ip)).reset == T0 + 60


async def test_a_lost_announcement_is_made_up_for_by_a_read(
    replicas: tuple[Store, Store],
) -> None:
    clock = Clock()
    store_b = Takes(replicas[1])
    a, b = counting(replicas[0], clock), counting(store_b, clock)  # b hears nothing
    rate = parse("3/minute")
    assert not await b.exhausted(rate, "auth-failure", "10.0.0.9")
    for _ in range(3):
        assert (await a.hit(rate, "auth-failure", "10.0.0.9")).allowed
    assert not await b.exhausted(rate, "auth-failure", "10.0.0.9")  # b read it just now
    assert store_b.reads == 1
    clock.now += PEEK_EVERY
    assert await b.exhausted(rate, "auth-failure", "10.0.0.9")
    assert store_b.reads == 2
