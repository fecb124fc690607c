"""How rate-limit budgets are counted: the interface, and the in-memory way.

A budget (``api/ratelimit.py``) spends, refunds and checks units of a rate per
key; what counts them is a ``Counting``. With SQLite there is one process, and
``LocalCounting`` keeps the counts in its memory with the ``limits`` library.
With PostgreSQL every replica must draw on the same budget, so
``allowances.SharedCounting`` counts in the database instead. ``Services`` picks
one from the store's backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import FixedWindowRateLimiter


@dataclass(frozen=True, slots=True)
class Count:
    """One budget for one key, after a request was counted (or looked at)."""

    allowed: bool
    remaining: int
    reset: float  # epoch seconds at which the window starts afresh


class Counting(Protocol):
    async def hit(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        """Spend one unit; ``allowed`` is False once the window's units are spent."""

    async def refund(self, rate: RateLimitItem, budget: str, key: str) -> None:
        """Give back one spent unit (never below zero)."""

    async def exhausted(self, rate: RateLimitItem, budget: str, key: str) -> bool:
        """True when a hit now would be refused; spends nothing."""

    async def peek(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        """The figures as they stand; spends nothing."""


class LocalCounting:
    """Fixed windows in this process's memory (``limits``): O(1) per request, no I/O.

    Fixed windows because they cost one counter per key and give every request of
    a window the same reset time, which is what ``X-RateLimit-Reset`` promises; a
    moving window keeps one entry per request (6,000 a minute per principal).
    """

    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = FixedWindowRateLimiter(self._storage)

    async def hit(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        allowed = await self._limiter.hit(rate, budget, key)
        figures = await self.peek(rate, budget, key)
        return Count(allowed, figures.remaining, figures.reset)

    async def refund(self, rate: RateLimitItem, budget: str, key: str) -> None:
        await self._storage.decr(rate.key_for(budget, key))

    async def exhausted(self, rate: RateLimitItem, budget: str, key: str) -> bool:
        return not await self._limiter.test(rate, budget, key)

    async def peek(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        reset, remaining = await self._limiter.get_window_stats(rate, budget, key)
        return Count(True, remaining, reset)
