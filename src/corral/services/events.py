"""In-process wake-ups and job events: waiters and watchers are told here, never by polling.

Each topic is a generation counter. A waiter notes the generation, checks the
store, and if there was nothing, waits for the counter to move; a change that
lands between the check and the wait is therefore never missed. PostgreSQL
replicas relay each other's changes into the same hub through LISTEN/NOTIFY:
every per-job topic fired here (claim, output, finish, cancel, reap) goes into
the ``Outbox``, which ``relay.relay_job_topics`` announces; what other replicas
announce arrives through ``Hub.relayed`` and is never announced again.

``JobEvents`` (below) carries what happened to a job to live watchers; with
relaying on, each event also goes into the outbox as a small descriptor
(``event_wire.py``), which other replicas turn back into events for their own
watchers (``event_relay.py``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.jobs import Job
from corral.domain.principals import Principal
from corral.services import event_wire
from corral.services.handoff import ParkedClaims
from corral.store.base import RESYNC

JOBS = "jobs"  # new claimable work
CHANGES = "changes"  # some job changed state (relayed between replicas for live views)
FLEET = "fleet"  # some executor registered, heartbeated or left (likewise)


JOB_PREFIX = "job:"
TOPIC_SEPARATOR = " "  # one announcement may carry many job topics (job ids hold no space)
OUTBOX_BOUND = 10_000  # job topics awaiting announcement; past it they are dropped


def job_topic(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


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


# --- job lifecycle events -------------------------------------------------------
#
# Unlike the signals above (which say only "look again"), these carry what
# happened, for clients that watch jobs live (CMD Executor's WebSocket). A
# subscriber sees the events of its own replica as they are published, and those
# of the other replicas as ``event_relay.RelayedEvents`` rebuilds them.

SUBSCRIBER_BOUND = 1000  # events queued per subscriber before it starts losing them


@dataclass(frozen=True, slots=True)
class JobStarted:
    job: Job
    at: float

    @property
    def job_id(self) -> str:
        return self.job.id


@dataclass(frozen=True, slots=True)
class JobOutput:
    job_id: str
    stream: str
    data: str
    at: float


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The job reached a terminal status (completed, failed or cancelled)."""

    job: Job
    at: float

    @property
    def job_id(self) -> str:
        return self.job.id


@dataclass(frozen=True, slots=True)
class EventsDropped:
    """Stands where ``count`` events were lost because the subscriber fell behind."""

    count: int


JobEvent = JobStarted | JobOutput | JobFinished
Delivered = JobEvent | EventsDropped


class Subscription:
    """One subscriber's bounded queue; ``job_id`` narrows it to one job.

    Publishing never waits on a subscriber: past ``bound`` queued events the
    new ones are counted and dropped, and the count is delivered in their place
    as an ``EventsDropped`` once there is room again (or the queue ran dry).
    """

    def __init__(self, bus: JobEvents, job_id: str | None, bound: int) -> None:
        self.job_id = job_id
        self._bus = bus
        self._bound = max(bound, 2)  # room for a drop notice and the event after it
        self._items: deque[Delivered] = deque()
        self._dropped = 0
        self._ready = asyncio.Event()
        self.closed = False

    def offer(self, event: JobEvent) -> None:
        if self.closed or (self.job_id is not None and event.job_id != self.job_id):
            return
        needed = 2 if self._dropped else 1
        if len(self._items) + needed > self._bound:
            self._dropped += 1
            return
        if self._dropped:
            self._items.append(EventsDropped(self._dropped))
            self._dropped = 0
        self._items.append(event)
        self._ready.set()

    async def get(self) -> Delivered | None:
        """The next event, waiting for one; None once the subscription is closed."""
        while not self.closed:
            if self._items:
                return self._items.popleft()
            if self._dropped:
                count, self._dropped = self._dropped, 0
                return EventsDropped(count)
            self._ready.clear()
            await self._ready.wait()
        return None

    def close(self) -> None:
        """Stop at once: the watcher is gone (or the server is), so what is queued is dropped."""
        self.closed = True
        self._items.clear()
        self._ready.set()
        self._bus.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JobEvents:
    """Fan-out of job events to subscribers, on the claim/finish hot path.

    The publishing helpers return at once when nobody listens, before building
    any event, so a dispatcher without watchers pays one truth test per call (and,
    when relaying, one short descriptor per event for the other replicas).
    """

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self.closed = False
        self.origin = secrets.token_hex(4)  # this replica, in the descriptors it sends
        self._outbox: Outbox | None = None

    @property
    def active(self) -> bool:
        return bool(self._subscribers)

    @property
    def relaying(self) -> bool:
        return self._outbox is not None

    def relay_to(self, outbox: Outbox) -> None:
        """From now on every event published here is also announced to other replicas."""
        self._outbox = outbox

    def wants(self, job_id: str) -> bool:
        """Whether any subscriber here would take an event of ``job_id``."""
        return any(sub.job_id in (None, job_id) for sub in self._subscribers)

    def watch(self, principal: Principal, job_id: str | None = None) -> Subscription:
        """Events are job state: whoever may read jobs may watch them."""
        require(principal, Action.READ)
        return self.subscribe(job_id)

    def subscribe(self, job_id: str | None = None, bound: int = SUBSCRIBER_BOUND) -> Subscription:
        sub = Subscription(self, job_id, bound)
        if self.closed:
            sub.closed = True
        else:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subscribers.discard(sub)

    def publish(self, event: JobEvent) -> None:
        for sub in tuple(self._subscribers):
            sub.offer(event)

    def started(self, jobs: Iterable[Job], now: float) -> None:
        if self._outbox is not None:
            for job in jobs:
                self._outbox.add(event_wire.started(self.origin, job.id, job.attempt, now))
        if self._subscribers:
            for job in jobs:
                self.publish(JobStarted(job, now))

    def output(
        self,
        job_id: str,
        stream: str,
        data: bytes,
        now: float,
        stored: event_wire.Stored | None = None,
    ) -> None:
        """``stored`` says where the bytes lie, for other replicas to read them there."""
        if self._outbox is not None and stored is not None and stored.end > stored.start:
            self._outbox.add(
                event_wire.output(
                    self.origin, job_id, stored.attempt, stream, stored.start, stored.end, now
                )
            )
        if self._subscribers and data:
            self.publish(JobOutput(job_id, stream, data.decode("utf-8", "replace"), now))

    def finished(self, jobs: Iterable[Job], now: float) -> None:
        """Only jobs that reached a terminal status; a retried job is pending again."""
        if self._outbox is None and not self._subscribers:
            return
        ended = [job for job in jobs if job.terminal]
        if self._outbox is not None:
            for job in ended:
                self._outbox.add(event_wire.finished(self.origin, job.id, now))
        if self._subscribers:
            for job in ended:
                self.publish(JobFinished(job, now))

    def close(self) -> None:
        """Shutdown: end every subscription so nobody waits on a stopping server."""
        self.closed = True
        for sub in tuple(self._subscribers):
            sub.close()
