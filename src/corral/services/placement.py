"""``pending_reason`` for job reads: why a pending job is one no online worker could take.

Read-only and computed per request from the executors online now (one read of the
executor list per page of jobs, and none when the page holds no pending job).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

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
        """Job id -> reason, for the pending jobs a worker would run that none online can.

        Jobs only external agents take (instructions without a command) are left out:
        they wait for an agent, not for a worker's capacity.
        """
        waiting = [j for j in jobs if j.status is JobStatus.PENDING and j.runnable]
        if not waiting:
            return {}
        now = time.time()
        online = [
            e.info
            for e in await self._store.list_executors()
            if e.state(now, self._offline_after) is ExecutorState.ONLINE
        ]
        found = {j.id: pending_reason(j.spec, online) for j in waiting}
        return {job_id: reason for job_id, reason in found.items() if reason is not None}
