"""Rate limits every replica shares: allowances taken from counts in PostgreSQL.

Each budget counts fixed windows aligned on the clock (a minute's window starts
on the minute), per key, in the database's ``rate_windows``. Asking the database
on every request would put a round trip on every request, so a replica *takes*
units in chunks instead (one UPSERT adds the chunk to the window's count and
returns the count after) and spends them locally, with no I/O, until they run
out. A chunk starts at one unit in a window and doubles with each take, up to
``1/CHUNK_SHARE`` of the limit; concurrent requests of one key wait on one take.

What that guarantees, with N replicas and a limit L per window:

* never more than L requests admitted in a window, whatever N (no overshoot): a
  take that finds fewer than its chunk left gets only what is left;
* a request may be refused while up to ``(N - 1) * max(1, L // CHUNK_SHARE)`` units
  are still held, unspent, by other replicas: they are spent there when the
  caller's next requests reach them, and lost at the window's end otherwise;
* once a take finds the window spent, the replica refuses without asking again
  until the window ends, so a flood costs the database nothing;
* a replica whose take finds a window spent tells the others (a NOTIFY), which
  then refuse that key too, without a query; ``exhausted`` (the check before
  authentication, on every request) reads a key's shared count only the first
  time it meets the key in a window and then once per ``PEEK_EVERY``, in case
  such a notification was lost;
* windows are cut by each replica's own clock: skew between replicas lets the
  requests of that skew at a window's edge count in the neighbouring window.

``X-RateLimit-Remaining`` is what the database had left at this replica's last
take plus what it holds: exact with one replica, a little high with several.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem

from corral.services.counting import Count
from corral.store.base import Store

log = logging.getLogger("corral.services")
CHUNK_SHARE = 32  # a replica takes at most this fraction of a limit at once
PEEK_EVERY = 30.0  # seconds a replica trusts its last read (spent windows are announced)
SPENT = "spent:"  # announced: spent:BUDGET:WINDOW_START:RESET:KEY (the key last: it may hold ":")
KEEP_AFTER = 60.0  # seconds a window's row outlives its end (clock skew between replicas)
SWEEP_FLOOR = 1024  # states kept before the first sweep of ended windows


@dataclass(slots=True)
class Allowance:
    """This replica's view of one key's current window."""

    window_start: int
    reset: float
    chunk: int
    left: int = 0  # units taken from the database and not yet spent here
    used: int = 0  # the window's shared count at this replica's last take or read
    spent: bool = False  # the shared count reached the limit: refuse without asking
    read_at: float = -math.inf  # monotonic time of the last read (``exhausted``)
    taking: asyncio.Future[None] | None = None  # a take in flight, for others to wait on


class SharedCounting:
    """``Counting`` over the store's shared windows; see the module docstring."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._monotonic = monotonic
        self._states: dict[tuple[str, str], Allowance] = {}
        self._sweep_at = SWEEP_FLOOR
        self._announcing: set[asyncio.Task[None]] = set()

    async def hit(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        state = self._state(rate, budget, key)
        while True:
            if state.left > 0:
                state.left -= 1
                return Count(True, _remaining(rate, state), state.reset)
            if state.spent:
                return Count(False, 0, state.reset)
            if state.taking is not None:
                await asyncio.shield(state.taking)
                continue
            await self._take(rate, budget, key, state)

    async def refund(self, rate: RateLimitItem, budget: str, key: str) -> None:
        """Straight back to the database, so another replica can spend it too."""
        state = self._state(rate, budget, key)
        state.used = await self._store.add_to_window(
            budget, key, state.window_start, -1, state.reset + KEEP_AFTER
        )
        state.spent = state.used >= rate.amount

    async def exhausted(self, rate: RateLimitItem, budget: str, key: str) -> bool:
        state = self._state(rate, budget, key)
        if state.left > 0:
            return False
        if state.spent:
            return True
        now = self._monotonic()
        if now - state.read_at >= PEEK_EVERY:
            state.read_at = now  # before the read: concurrent checks need not all read
            state.used = await self._store.window_count(budget, key, state.window_start)
            state.spent = state.used >= rate.amount
        return state.spent

    async def peek(self, rate: RateLimitItem, budget: str, key: str) -> Count:
        state = self._state(rate, budget, key)
        return Count(True, _remaining(rate, state), state.reset)

    def heard(self, topic: str) -> None:
        """A store listener: some replica found a window spent; refuse its key here too."""
        if not topic.startswith(SPENT):
            return
        try:
            budget, start, reset, key = topic[len(SPENT) :].split(":", 3)
            window_start, ends = int(start), float(reset)
        except ValueError:
            return
        state = self._states.get((budget, key))
        if state is not None and state.window_start == window_start:
            state.spent = True  # what it still holds was taken in time: it stays spendable
        elif (state is None or state.window_start < window_start) and ends > self._clock():
            fresh = Allowance(window_start, ends, 1, spent=True, read_at=self._monotonic())
            self._remember(budget, key, fresh)

    async def forget(self, limit: int = 1000) -> int:
        """Delete a batch of windows that ended (every replica sweeps; see ``Services``)."""
        return await self._store.forget_windows(self._clock(), limit)

    async def _take(self, rate: RateLimitItem, budget: str, key: str, state: Allowance) -> None:
        chunk = min(state.chunk, _largest_chunk(rate))
        state.taking = asyncio.get_running_loop().create_future()
        try:
            used = await self._store.add_to_window(
                budget, key, state.window_start, chunk, state.reset + KEEP_AFTER
            )
        finally:
            state.taking.set_result(None)
            state.taking = None
        state.left += max(0, min(chunk, rate.amount - (used - chunk)))
        state.used = used
        state.spent = used >= rate.amount  # nothing left to take: stop asking
        state.chunk = min(chunk * 2, _largest_chunk(rate))
        if state.spent:
            self._announce(f"{SPENT}{budget}:{state.window_start}:{state.reset:.0f}:{key}")

    def _announce(self, topic: str) -> None:
        """In the background: the request that found the window spent need not wait."""
        task = asyncio.get_running_loop().create_task(self._store.announce(topic))
        self._announcing.add(task)
        task.add_done_callback(self._announced)

    def _announced(self, task: asyncio.Task[None]) -> None:
        self._announcing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not announce a spent window", extra={"action": "relay_failed"})

    def _state(self, rate: RateLimitItem, budget: str, key: str) -> Allowance:
        now = self._clock()
        period = rate.get_expiry()
        window_start = int(now // period) * period
        state = self._states.get((budget, key))
        if state is not None and state.window_start == window_start:
            return state
        # A new window: a busy key's next chunk starts from half its last one, so a
        # steady caller does not climb from one unit again every window.
        chunk = max(1, state.chunk // 2) if state is not None else 1
        fresh = Allowance(window_start, float(window_start + period), chunk)
        self._remember(budget, key, fresh)
        return fresh

    def _remember(self, budget: str, key: str, state: Allowance) -> None:
        self._states[(budget, key)] = state
        if len(self._states) > self._sweep_at:
            self._sweep(self._clock())

    def _sweep(self, now: float) -> None:
        """Drop the states of ended windows; amortised, so O(1) per request."""
        ended = [k for k, s in self._states.items() if s.reset <= now and s.taking is None]
        for k in ended:
            del self._states[k]
        self._sweep_at = max(SWEEP_FLOOR, 2 * len(self._states))


def _largest_chunk(rate: RateLimitItem) -> int:
    return max(1, rate.amount // CHUNK_SHARE)


def _remaining(rate: RateLimitItem, state: Allowance) -> int:
    """What the database had left at the last take or read, plus what is held here;
    a window known to be spent has only what is held here."""
    return state.left if state.spent else max(0, rate.amount - state.used) + state.left
