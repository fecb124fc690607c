"""How many live streams (SSE followers, WebSocket watchers) one caller may hold open.

Each open stream costs a parked coroutine, a socket and, for event watchers, a
queue that every job event is copied into; without a bound one token could open
thousands and slow every publish. Slots are counted per principal, in this
replica's memory (like the rate limits): with N replicas a caller may hold up
to N times as many. A refused stream is a ``RateLimited`` (429) in the
dialect's own shape, before anything is subscribed.
"""

from __future__ import annotations

from types import TracebackType

from corral.domain.principals import Principal
from corral.errors import RateLimited

RETRY_AFTER = 5  # seconds: a stream usually ends when its job does


class StreamSlot:
    """One held slot; giving it back twice is harmless, so every exit path may do it."""

    def __init__(self, slots: StreamSlots, key: str) -> None:
        self._slots = slots
        self._key = key
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back(self._key)

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class StreamSlots:
    def __init__(self, per_principal: int) -> None:
        self.per_principal = per_principal
        self._open: dict[str, int] = {}

    def acquire(self, principal: Principal) -> StreamSlot:
        """A slot for one more stream of ``principal``, or ``RateLimited`` past the bound."""
        held = self._open.get(principal.id, 0)
        if held >= self.per_principal:
            raise RateLimited(
                f"too many open streams: at most {self.per_principal} per caller",
                retry_after=RETRY_AFTER,
                limit=self.per_principal,
            )
        self._open[principal.id] = held + 1
        return StreamSlot(self, principal.id)

    def held(self, principal_id: str) -> int:
        return self._open.get(principal_id, 0)

    def _give_back(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)
