"""Job events: what happened to a job, fanned out to whoever watches jobs live.

Unlike the hub's signals (``events.py``, which say only "look again"), these carry
what happened, for clients that watch jobs live (CMD Executor's WebSocket, the
dashboard). A subscriber sees the events of its own replica as they are published,
and those of the other replicas as ``event_relay.RelayedEvents`` rebuilds them: with
relaying on, each event also goes into the outbox as a small descriptor
(``event_wire.py``).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.jobs import Job
from corral.domain.principals import Principal
from corral.services import event_wire
from corral.services.outbox import Outbox

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
