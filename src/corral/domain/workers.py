"""Executors (worker agents and external pullers) as the dispatcher sees them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ExecutorState(StrEnum):
    ONLINE = "online"
    DRAINING = "draining"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class ExecutorInfo:
    """What an executor says about itself when it registers or heartbeats."""

    executor_id: str
    principal_id: str
    hostname: str | None = None
    ip: str | None = None
    cpu_count: int | None = None
    memory_mb: int | None = None
    os: str | None = None
    labels: tuple[str, ...] = ()
    concurrency: int = 1
    metadata: dict[str, object] = field(default_factory=dict)
    # Placement (issue 12): the CPUs it offers to jobs (None: its cpu_count), how it
    # isolates jobs, and whether it can run a job with no network.
    cpus: float | None = None
    isolation: str | None = None
    network_control: bool = False

    @property
    def cpu_capacity(self) -> float:
        """CPUs a claim may reserve here; an executor that said nothing offers none."""
        if self.cpus is not None:
            return self.cpus
        return float(self.cpu_count or 0)

    @property
    def memory_capacity(self) -> int:
        return self.memory_mb or 0


@dataclass(frozen=True, slots=True)
class Executor:
    info: ExecutorInfo
    registered_at: float
    last_heartbeat: float
    draining: bool
    jobs_completed: int
    reported_status: str | None = None  # what the executor last said it was doing
    # False for a record a claim made (an executor may claim without registering):
    # a `corral worker` told so registers again, with its hostname and capacity.
    registered: bool = True

    def state(self, now: float, offline_after: float) -> ExecutorState:
        """Offline is derived from heartbeat age, so no sweeper has to write it."""
        if now - self.last_heartbeat > offline_after:
            return ExecutorState.OFFLINE
        return ExecutorState.DRAINING if self.draining else ExecutorState.ONLINE
