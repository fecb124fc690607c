"""System-wide counts for the admin views and the metrics endpoint."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from corral.auth.policy import Action, require
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorState
from corral.store.base import JobFilter, Store

T = TypeVar("T")


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


class WaitEstimator:
    """How long a newly queued job will likely wait: CMD Executor's ``estimatedWaitTime``.

    The work ahead (pending jobs of the same or higher priority) times the mean
    run time of recently finished jobs, spread over the capacity of the online
    executors. The inputs are cached for a few seconds so a burst of submits
    costs no extra queries; the figure is a hint, not a promise.
    """

    SAMPLE = 100

    def __init__(self, store: Store, offline_after: float) -> None:
        self._store = store
        self._offline_after = offline_after
        self._cache: dict[str, tuple[Any, float]] = {}

    async def seconds(self, priority: int) -> int:
        pending: dict[int, int] = await self._cached(
            "pending", 1.0, self._store.pending_by_priority
        )
        ahead = sum(n for p, n in pending.items() if p >= priority)
        mean: float = await self._cached("mean", 5.0, self._mean_run_time)
        capacity: float = await self._cached("capacity", 5.0, self._capacity)
        return math.ceil(ahead * mean / max(capacity, 1.0))

    async def _cached(self, key: str, ttl: float, compute: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        found = self._cache.get(key)
        if found is not None and found[1] >= now:
            value: T = found[0]
            return value
        value = await compute()
        self._cache[key] = (value, now + ttl)
        return value

    async def _mean_run_time(self) -> float:
        done, _ = await self._store.list_jobs(JobFilter(status=JobStatus.COMPLETED), self.SAMPLE, 0)
        runs = [j.finished_at - j.started_at for j in done if j.finished_at and j.started_at]
        return sum(runs) / len(runs) if runs else 1.0

    async def _capacity(self) -> float:
        now = time.time()
        executors = await self._store.list_executors()
        live = [e for e in executors if e.state(now, self._offline_after) is ExecutorState.ONLINE]
        return float(sum(max(e.info.concurrency, 1) for e in live))
