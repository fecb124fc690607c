"""In-process wake-ups and job events: waiters and watchers are told here, never by polling.

Each topic is a generation counter. A waiter notes the generation, checks the
store, and if there was nothing, waits for the counter to move; a change that
lands between the check and the wait is therefore never missed. PostgreSQL
replicas relay each other's changes into the same hub through LISTEN/NOTIFY:
every per-job topic fired here (claim, output, finish, cancel, reap) goes into
the ``Outbox``, which ``relay.relay_job_topics`` announces; what other replicas
announce arrives through ``Hub.relayed`` and is never announced again.

The hub also holds ``JobEvents`` (``job_events.py``), which carries what happened to
a job to live watchers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from corral.services import event_wire
from corral.services.handoff import ParkedClaims
from corral.services.job_events import JobEvents
from corral.services.outbox import Outbox
from corral.store.base import RESYNC

JOBS = "jobs"  # new claimable work
CHANGES = "changes"  # some job changed state (relayed between replicas for live views)
FLEET = "fleet"  # some executor registered, heartbeated or left (likewise)


JOB_PREFIX = "job:"
TOPIC_SEPARATOR = " "  # one announcement may carry many job topics (job ids hold no space)


def job_topic(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


class Signal:
    __slots__ = ("_event", "generation", "waiters")

    def __init__(self) -> None:
        self.generation = 0
        self.waiters = 0
        self._event = asyncio.Event()

    def fire(self) -> None:
        """Cheap when nobody waits (the hot path fires on every claim and finish)."""
        self.generation += 1
        if self.waiters:
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
        self.changes = Signal()  # any job changed state: live views refresh on it
        self.fleet = Signal()  # an executor registered, heartbeated or left
        # Changes made by this process, as opposed to those relayed from other replicas:
        # only these are announced, so replicas never echo each other's news.
        self.local_changes = 0
        self.local_fleet = 0
        self.closing = False  # set at shutdown: long-polls return at once
        self.parked = ParkedClaims()  # long-poll claims a submit may serve (handoff.py)
        self._topics: dict[str, Signal] = {}
        self.events = JobEvents()
        self.outbox: Outbox | None = None  # set once job topics are relayed to other replicas
        # Set when job events from other replicas are turned into events here.
        self.on_event: Callable[[str], None] | None = None

    def start_relaying(self) -> Outbox:
        """From now on every job topic fired here is also queued for the other replicas."""
        if self.outbox is None:
            self.outbox = Outbox()
            self.events.relay_to(self.outbox)
        return self.outbox

    def close(self) -> None:
        """Release every waiter so shutdown does not wait out their long-polls."""
        self.closing = True
        self.events.close()
        if self.outbox is not None:
            self.outbox.close()
        self.wake_all()

    def job_changed(self) -> None:
        self.local_changes += 1
        self.changes.fire()

    def fleet_changed(self) -> None:
        self.local_fleet += 1
        self.fleet.fire()

    def signal(self, topic: str) -> Signal:
        if topic == JOBS:
            return self.jobs
        sig = self._topics.get(topic)
        if sig is None:
            sig = self._topics[topic] = Signal()
        return sig

    def fire(self, topic: str) -> None:
        """Something happened here: wake this process's waiters, and queue a job's
        topic for the other replicas when relaying."""
        self._wake(topic)
        if self.outbox is not None and topic.startswith(JOB_PREFIX):
            self.outbox.add(topic)

    def relayed(self, payload: str) -> None:
        """Another replica announced these topics: wake the waiters here, and only here
        (announcing them again would echo between replicas for ever). ``RESYNC``
        (announcements were lost while the database was away) wakes every waiter, each
        to look at the store again."""
        if payload == RESYNC:
            self.wake_all()
            return
        for topic in payload.split(TOPIC_SEPARATOR):
            if topic.startswith(event_wire.PREFIX):
                if self.on_event is not None:
                    self.on_event(topic)
            elif topic:
                self._wake(topic)

    def wake_all(self) -> None:
        self.jobs.fire()
        self.changes.fire()
        self.fleet.fire()
        for topic in list(self._topics):
            self._wake(topic)

    def _wake(self, topic: str) -> None:
        if topic == JOBS:
            self.jobs.fire()
            return
        if topic == CHANGES:
            self.changes.fire()
            return
        if topic == FLEET:
            self.fleet.fire()
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
