"""In-process wake-ups: long-polling claimers and output followers wait here, never in a sleep loop.

Each topic is a generation counter. A waiter notes the generation, checks the
store, and if there was nothing, waits for the counter to move; a change that
lands between the check and the wait is therefore never missed. PostgreSQL
replicas relay each other's changes into the same hub through LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio

JOBS = "jobs"  # new claimable work


def job_topic(job_id: str) -> str:
    return f"job:{job_id}"


class Signal:
    __slots__ = ("_event", "generation", "waiters")

    def __init__(self) -> None:
        self.generation = 0
        self.waiters = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        self.generation += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, since: int, timeout: float) -> bool:  # noqa: ASYNC109
        """True once the generation moved past ``since``; False on timeout."""
        if self.generation != since:
            return True
        event = self._event
        self.waiters += 1
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self.waiters -= 1


class Hub:
    """Signals by topic; per-job signals exist only while somebody waits on them."""

    def __init__(self) -> None:
        self.jobs = Signal()
        self.closing = False  # set at shutdown: long-polls return at once
        self._topics: dict[str, Signal] = {}

    def close(self) -> None:
        """Release every waiter so shutdown does not wait out their long-polls."""
        self.closing = True
        self.jobs.fire()
        for sig in list(self._topics.values()):
            sig.fire()

    def signal(self, topic: str) -> Signal:
        if topic == JOBS:
            return self.jobs
        sig = self._topics.get(topic)
        if sig is None:
            sig = self._topics[topic] = Signal()
        return sig

    def fire(self, topic: str) -> None:
        if topic == JOBS:
            self.jobs.fire()
            return
        sig = self._topics.get(topic)
        if sig is not None:
            sig.fire()
            if sig.waiters == 0:
                del self._topics[topic]

    def release(self, topic: str) -> None:
        """Forget a per-job signal once its last waiter left."""
        sig = self._topics.get(topic)
        if sig is not None and sig.waiters == 0:
            del self._topics[topic]
