"""Job events announced by other replicas, rebuilt here for this replica's watchers.

Another replica announces each event as a descriptor (``event_wire.py``): which
job, which attempt, where its output lies. Here, and only while somebody watches
(``JobEvents.active``), ``RelayedEvents`` queues the descriptors it hears and a
single task turns them back into events, in the order they were heard, by
reading the job (one query per batch) and the output bytes from the database.
Nobody watching: a descriptor is dropped as it arrives, with no query at all.

What a watcher on this replica then sees of a job that went through another:
its start, its output and its end, tens of milliseconds after they happened
(the announcing replica lingers 10 ms to batch, then the database delivers);
output that a later attempt replaced before it was read is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque

from corral.domain.jobs import Job
from corral.errors import NotFound
from corral.services import event_wire
from corral.services.event_wire import Descriptor
from corral.services.job_events import JobEvent, JobEvents, JobFinished, JobOutput, JobStarted
from corral.store.base import Store

log = logging.getLogger("corral.services")
QUEUE_BOUND = 10_000  # descriptors waiting to be read; past it they are dropped (and logged)
DELIVERED_KEPT = 4096  # streams whose delivered end is remembered, newest kept


class RelayedEvents:
    def __init__(self, store: Store, events: JobEvents) -> None:
        self._store = store
        self._events = events
        self._queue: deque[Descriptor] = deque()
        self._ready = asyncio.Event()
        self._dropped = 0
        # (job, attempt, stream) -> end of the bytes published: a report's output may
        # overlap output streamed before it, and is trimmed to what is new.
        self._delivered: OrderedDict[tuple[str, int, str], int] = OrderedDict()

    def heard(self, text: str) -> None:
        """A store listener's share of a NOTIFY (called on the event loop, never blocks)."""
        if not self._events.active:
            return
        found = event_wire.parse(text)
        if found is None or found.origin == self._events.origin:
            return  # malformed, or this replica's own event coming back
        if len(self._queue) >= QUEUE_BOUND:
            self._dropped += 1
            return
        self._queue.append(found)
        self._ready.set()

    async def run_forever(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch = list(self._queue)
            self._queue.clear()
            if self._dropped:
                log.warning(
                    "job events from other replicas dropped",
                    extra={"action": "relayed_events_dropped", "count": self._dropped},
                )
                self._dropped = 0
            try:
                await self._publish(batch)
            except Exception:  # the database away, say: these are lost, the task lives on
                log.exception(
                    "could not read relayed job events",
                    extra={"action": "relayed_events_failed", "count": len(batch)},
                )

    async def _publish(self, batch: list[Descriptor]) -> None:
        wanted = [d for d in batch if self._events.wants(d.job_id)]
        ids = sorted({d.job_id for d in wanted if d.kind != event_wire.OUTPUT})
        jobs = {job.id: job for job in await self._store.get_jobs(ids)} if ids else {}
        for descriptor in wanted:
            event = await self._event(descriptor, jobs)
            if event is not None:
                self._events.publish(event)

    async def _event(self, d: Descriptor, jobs: dict[str, Job]) -> JobEvent | None:
        if d.kind == event_wire.OUTPUT:
            return await self._output(d)
        job = jobs.get(d.job_id)
        if job is None:
            return None
        if d.kind == event_wire.STARTED:
            return JobStarted(job, d.at)
        return JobFinished(job, d.at) if job.terminal else None

    async def _output(self, d: Descriptor) -> JobOutput | None:
        key = (d.job_id, d.attempt, d.stream)
        start = max(d.start, self._delivered.get(key, 0))
        if start >= d.end:
            return None
        try:
            piece = await self._store.read_output(d.job_id, d.stream, start, d.end - start)
        except NotFound:
            return None  # deleted since
        if piece.attempt != d.attempt or not piece.data:
            return None  # a later attempt started afresh: these bytes are gone
        self._delivered[key] = start + len(piece.data)
        self._delivered.move_to_end(key)
        while len(self._delivered) > DELIVERED_KEPT:
            self._delivered.popitem(last=False)
        return JobOutput(d.job_id, d.stream, piece.data.decode("utf-8", "replace"), d.at)
