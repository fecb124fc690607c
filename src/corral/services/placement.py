"""``pending_reason`` for job reads: why a pending job waits when it is not just its turn.

Two causes, both computed per request and never stored: a job held back by its
concurrency key (named, with who holds the key's slots: one read of the keys on the
page), and a job no online worker could take (one read of the executor list per page
of jobs, and none when the page holds no such pending job).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from corral.domain.concurrency import held_reason
from corral.domain.jobs import Job
from corral.domain.placement import pending_reason
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorState
from corral.store.base import Store


class PlacementService:
    def __init__(self, store: Store, offline_after: float) -> None:
        self._store = store
        self._offline_after = offline_after

    async def reasons(self, jobs: Sequence[Job]) -> dict[str, str]:
        """Job id -> reason: held by a concurrency key, or runnable by no online worker.

        Jobs only external agents take (instructions without a command) get no placement
        reason: they wait for an agent, not for a worker's capacity.
        """
        pending = [j for j in jobs if j.status is JobStatus.PENDING]
        found = await self._held(j for j in pending if j.held)
        waiting = [j for j in pending if j.runnable and j.id not in found]
        if not waiting:
            return found
        now = time.time()
        online = [
            e.info
            for e in await self._store.list_executors()
            if e.state(now, self._offline_after) is ExecutorState.ONLINE
        ]
        for job in waiting:
            if (reason := pending_reason(job.spec, online)) is not None:
                found[job.id] = reason
        return found

    async def _held(self, held: Iterable[Job]) -> dict[str, str]:
        keyed = {j.id: (j.spec.concurrency_key, j.spec.concurrency_limit) for j in held}
        wanted = [key for key, _ in keyed.values() if key is not None]
        usage = await self._store.key_usage(wanted)
        return {
            job_id: held_reason(key, limit, usage.get(key))
            for job_id, (key, limit) in keyed.items()
            if key is not None
        }
