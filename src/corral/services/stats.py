"""System-wide counts for the admin views, the metrics endpoint and Octaskly's stats."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from corral.auth.policy import Action, require
from corral.domain.concurrency import KeyUsage
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorState
from corral.store.base import JobFilter, Store

T = TypeVar("T")
RUNNING_SCAN_LIMIT = 10000
HELD_KEYS_SHOWN = 20
CPU_WINDOW = 1.0  # seconds: shorter windows make the CPU figure swing between 0 and 100
PROC_STATUS = "/proc/self/status"


@dataclass(frozen=True, slots=True)
class QueueStats:
    jobs_by_status: dict[JobStatus, int]
    pending_by_priority: dict[int, int]


@dataclass(frozen=True, slots=True)
class FleetCounts:
    """Executors known to the store; active and idle count only the online ones."""

    total: int
    active: int  # online and running at least one job
    idle: int  # online with nothing to run


@dataclass(frozen=True, slots=True)
class ProcessFigures:
    """This dispatcher process, not the machine: what its operator can act on."""

    uptime_seconds: float
    memory_mb: float | None  # resident set size; None where /proc is missing
    cpu_percent: float  # of one CPU, over the last window (see ``CpuSampler``)


@dataclass(frozen=True, slots=True)
class Overview:
    queue: QueueStats
    fleet: FleetCounts
    process: ProcessFigures
    database_bytes: int

    @property
    def total_jobs(self) -> int:
        return sum(self.queue.jobs_by_status.values())


class StatsService:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._cpu = CpuSampler()

    async def queue(self, principal: Principal | None = None) -> QueueStats:
        """``principal`` is None only for the metrics scrape, which has its own gate."""
        if principal is not None:
            require(principal, Action.READ)
        by_status = await self._store.count_by_status()
        full = {status: by_status.get(status, 0) for status in JobStatus}
        return QueueStats(full, await self._store.pending_by_priority())

    async def held_keys(self, principal: Principal, limit: int = HELD_KEYS_SHOWN) -> list[KeyUsage]:
        """The concurrency keys holding jobs back now, most held first (the Queues page)."""
        require(principal, Action.READ)
        return await self._store.held_keys(limit)

    async def overview(
        self, principal: Principal, *, started_at: float, offline_after: float
    ) -> Overview:
        """Queue, fleet, this process and the database in one answer (Octaskly's stats)."""
        queue = await self.queue(principal)
        fleet = await self._fleet(offline_after)
        process = ProcessFigures(
            uptime_seconds=max(time.time() - started_at, 0.0),
            memory_mb=resident_mb(),
            cpu_percent=self._cpu.percent(),
        )
        return Overview(queue, fleet, process, await self._store.database_size())

    async def _fleet(self, offline_after: float) -> FleetCounts:
        running, _ = await self._store.list_jobs(
            JobFilter(status=JobStatus.RUNNING), RUNNING_SCAN_LIMIT, 0
        )
        busy = {job.executor_id for job in running if job.executor_id is not None}
        executors = await self._store.list_executors()
        now = time.time()
        # A draining executor is still alive and still runs its jobs: it counts as online.
        online = [
            e.info.executor_id
            for e in executors
            if e.state(now, offline_after) is not ExecutorState.OFFLINE
        ]
        active = sum(1 for executor_id in online if executor_id in busy)
        return FleetCounts(total=len(executors), active=active, idle=len(online) - active)


def resident_mb() -> float | None:
    """VmRSS from /proc (a small in-memory read, so no thread hop); None off Linux."""
    try:
        with open(PROC_STATUS, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024  # the kernel writes kB
    except (OSError, ValueError, IndexError):
        return None
    return None


class CpuSampler:
    """CPU used by this process (user + system, from ``os.times``) per wall-clock second.

    The figure covers the time since an earlier sample at least ``CPU_WINDOW``
    old, so two stats calls in quick succession still give a steady number, and
    the first call covers the time since the service was built.
    """

    def __init__(self) -> None:
        self._base = self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float]:
        times = os.times()
        return time.monotonic(), times.user + times.system

    def percent(self) -> float:
        now = self._sample()
        if now[0] - self._last[0] >= CPU_WINDOW:
            self._base, self._last = self._last, now
        wall = now[0] - self._base[0]
        return 100.0 * (now[1] - self._base[1]) / wall if wall > 0 else 0.0


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
