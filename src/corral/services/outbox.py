"""The job topics this replica fired, waiting to be announced to the other replicas.

Every per-job topic fired in the hub (claim, output, finish, cancel, reap) and every
job event goes in here; ``relay.relay_job_topics`` drains it into LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio

OUTBOX_BOUND = 10_000  # job topics awaiting announcement; past it they are dropped


class Outbox:
    """Job topics fired in this process, waiting to be announced to the other replicas.

    A topic fired twice before the next announcement goes once. The bound only
    matters if announcing stalls: a dropped topic costs a follower elsewhere one
    keep-alive period of delay, never a missed end (it re-reads the job then).
    """

    def __init__(self) -> None:
        self._topics: dict[str, None] = {}
        self._ready = asyncio.Event()
        self.closed = False

    def add(self, topic: str) -> None:
        if len(self._topics) < OUTBOX_BOUND:
            self._topics[topic] = None
            self._ready.set()

    async def ready(self) -> None:
        """Return once there is a topic to announce (or the outbox closed)."""
        await self._ready.wait()

    def drain(self) -> list[str]:
        """Every topic queued so far, oldest first; the outbox is empty after."""
        self._ready.clear()
        topics = list(self._topics)
        self._topics.clear()
        return topics

    def close(self) -> None:
        self.closed = True
        self._ready.set()
