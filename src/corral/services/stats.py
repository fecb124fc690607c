"""System-wide counts for the admin views and the metrics endpoint."""

from __future__ import annotations

from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.store.base import Store


@dataclass(frozen=True, slots=True)
class QueueStats:
    jobs_by_status: dict[JobStatus, int]
    pending_by_priority: dict[int, int]


class StatsService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def queue(self, principal: Principal | None = None) -> QueueStats:
        """``principal`` is None only for the metrics scrape, which has its own gate."""
        if principal is not None:
            require(principal, Action.READ)
        by_status = await self._store.count_by_status()
        full = {status: by_status.get(status, 0) for status in JobStatus}
        return QueueStats(full, await self._store.pending_by_priority())
