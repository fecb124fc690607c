"""Tell the other replicas what changed here, so their waiters and live views wake.

Two kinds of news travel. *Per-job topics* (a job was claimed, wrote output,
finished, was cancelled or reaped) wake whoever follows that job on another
replica: ``relay_job_topics`` announces them as they happen, many per
announcement, lingering ``LINGER`` first so a burst shares one NOTIFY. *Live
views* need only "some job / some executor changed": ``relay_changes`` waits
``RELAY_EVERY`` after a change and announces once, whatever happened between.
Only news made here is announced (``Hub.outbox``, ``Hub.local_*``); what other
replicas announce reaches ``Hub.relayed``, which never announces it again, so
replicas never echo each other. Idle, each task is one parked coroutine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from corral.services.events import CHANGES, FLEET, TOPIC_SEPARATOR, Hub
from corral.services.outbox import Outbox
from corral.store.base import Store

log = logging.getLogger("corral.services")
RELAY_EVERY = 0.25
LINGER = 0.01  # a follower never notices 10 ms; a burst of claims shares one NOTIFY
PARK = 300.0
PAYLOAD_LIMIT = 7000  # PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
RETRY_PAUSE = 0.5  # after a failed announcement (the database away), before the next try


def pack(topics: list[str], limit: int = PAYLOAD_LIMIT) -> Iterator[str]:
    """Join topics into as few payloads as fit under ``limit`` bytes each."""
    batch: list[str] = []
    size = 0
    for topic in topics:
        cost = len(topic.encode()) + 1
        if batch and size + cost > limit:
            yield TOPIC_SEPARATOR.join(batch)
            batch, size = [], 0
        batch.append(topic)
        size += cost
    if batch:
        yield TOPIC_SEPARATOR.join(batch)


async def relay_job_topics(outbox: Outbox, store: Store) -> None:
    """Announce the job topics fired here until the hub closes.

    Topics whose announcement failed (the database away) go back into the outbox
    and are tried again after ``RETRY_PAUSE``, so a change made as the database
    came back still reaches followers elsewhere; the outbox's bound caps what a
    long outage can pile up.
    """
    failing = False
    while not outbox.closed:
        await outbox.ready()
        await asyncio.sleep(LINGER)
        ok = await _announce_all(store, pack(outbox.drain()), outbox)
        if not ok and not failing:  # once per outage: the store logs the outage itself
            log.warning("could not relay job topics", extra={"action": "relay_failed"})
        failing = not ok
        if failing:
            await asyncio.sleep(RETRY_PAUSE)


async def _announce_all(store: Store, payloads: Iterator[str], outbox: Outbox) -> bool:
    """Announce each payload; on a failure requeue it and the rest, and say so."""
    for payload in payloads:
        try:
            await store.announce(payload)
        except Exception:
            for left in (payload, *payloads):
                for topic in left.split(TOPIC_SEPARATOR):
                    outbox.add(topic)
            return False
    return True


async def relay_changes(hub: Hub, store: Store) -> None:
    """Announce "some job / some executor changed here" at most every ``RELAY_EVERY``.

    What could not be announced (the database away) stays owed and is tried again
    after ``RETRY_PAUSE``, without waiting for the next change.
    """
    sent = (hub.local_changes, hub.local_fleet)
    owed = False
    while not hub.closing:
        if not owed:
            await _next_change(hub)
            if hub.closing:
                return
        await asyncio.sleep(RETRY_PAUSE if owed else RELAY_EVERY)
        now = (hub.local_changes, hub.local_fleet)
        try:
            if now[0] != sent[0]:
                await store.announce(CHANGES)
                sent = (now[0], sent[1])
            if now[1] != sent[1]:
                await store.announce(FLEET)
                sent = now
            owed = False
        except Exception:  # a dead relay task would leave every live view stale for good
            if not owed:  # once per outage: the store logs the outage itself
                log.warning("could not relay changes", extra={"action": "relay_failed"})
            owed = True


async def _next_change(hub: Hub) -> None:
    """Return once some job or executor changed (here or, relayed, elsewhere)."""
    seen = (hub.changes.generation, hub.fleet.generation)
    waits = [
        asyncio.ensure_future(hub.changes.wait(seen[0], PARK)),
        asyncio.ensure_future(hub.fleet.wait(seen[1], PARK)),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
