"""How long a long transfer (a followed output stream, a download) keeps trying again.

A plain call is retried inside the transport (``corral.failover``), before its
answer starts. A stream that breaks half-way breaks later, in the caller's hands:
the follow or download starts again from where it can, on the replica in use
(the transport moves on from one that refuses), after a pause that grows as in
``corral.failover``. The session's ``retry_for`` counts from the first failure
since the transfer last got further, so a follow may last for hours and still
ride out each replica's death; a transfer that makes no progress gives up.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from corral.failover import BACKOFF_CAP, BACKOFF_FIRST


class RetryWindow:
    """The failures of one transfer since it last made progress."""

    def __init__(
        self,
        retry_for: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.retry_for = retry_for
        self.clock = clock
        self.jitter = jitter
        self._since: float | None = None  # the first failure since the last progress
        self._failures = 0

    def progressed(self) -> None:
        """The transfer got further than ever before: a later failure starts afresh."""
        self._since, self._failures = None, 0

    def pause(self) -> float | None:
        """Seconds to wait before the next try, or None: the window is over, give up."""
        now = self.clock()
        if self._since is None:
            self._since = now
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2**self._failures)
        self._failures += 1
        pause = self.jitter(ceiling / 2, ceiling)
        return None if now + pause > self._since + self.retry_for else pause
