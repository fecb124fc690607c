"""The shared-counts half of the storage port (``Store`` extends it).

Two kinds of count that every replica must see alike: rate-limit windows (each
budget's fixed window, per key, from which replicas take allowances) and the
dashboard's activity (claims, finishes and waits per time slot, added by each
replica). Both are plain additions, so replicas never read-modify-write each
other's numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

ALL_TIME = 0  # the activity slot that holds the totals since counting began


class CountStore(Protocol):
    async def add_to_window(
        self, budget: str, key: str, window_start: int, amount: int, expires_at: float
    ) -> int:
        """Add ``amount`` to ``key``'s count in the window starting at ``window_start``
        (epoch seconds) and return the count after. A negative amount gives back (a
        refund), never below zero. ``expires_at``: when the row may be forgotten."""

    async def window_count(self, budget: str, key: str, window_start: int) -> int:
        """``key``'s count in that window; 0 if nothing was counted."""

    async def forget_windows(self, now: float, limit: int) -> int:
        """Delete up to ``limit`` windows expired by ``now``; how many went."""

    async def add_activity(self, slot: int, counts: Mapping[str, int]) -> None:
        """Add each count to ``slot`` and to the all-time totals (slot ``ALL_TIME``)."""

    async def read_activity(self, since_slot: int) -> list[tuple[int, str, int]]:
        """(slot, name, count) for every slot from ``since_slot`` on, and the totals."""

    async def forget_activity(self, before_slot: int) -> int:
        """Delete the slots before ``before_slot`` (never the totals); how many rows went."""
