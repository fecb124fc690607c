"""Tell the other replicas that jobs or executors changed, so their live views refresh.

Claims and results already reach other replicas' waiters through the store's
announcements; live pages need only "something changed". Announcing that on
every change would add a NOTIFY to the hot path, so this task coalesces: after
a change it waits ``RELAY_EVERY`` and announces once, whatever happened in
between. Only changes made here are announced (``Hub.local_*``), so replicas
never echo each other's news back and forth. Idle, it is one parked coroutine.
"""

from __future__ import annotations

import asyncio

from corral.services.events import CHANGES, FLEET, Hub
from corral.store.base import Store

RELAY_EVERY = 0.25
PARK = 300.0


async def relay_changes(hub: Hub, store: Store) -> None:
    sent = (hub.local_changes, hub.local_fleet)
    while not hub.closing:
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
        if hub.closing:
            return
        await asyncio.sleep(RELAY_EVERY)
        now = (hub.local_changes, hub.local_fleet)
        if now[0] != sent[0]:
            await store.announce(CHANGES)
        if now[1] != sent[1]:
            await store.announce(FLEET)
        sent = now
