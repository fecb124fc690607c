"""Executors (worker agents and external pullers): registration, heartbeats, listing, removal.

Two ways in. ``corral worker`` registers idempotently with a shared worker token
(``register``). CMD Executor's workers register once under a chosen id and get a
token of their own, bound to that id (``register_exclusive``): a second live
registration of the same id is a conflict, while an id whose worker went silent
may be taken over, which also revokes the silent worker's token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace

from corral.auth.policy import Action, require, require_executor, require_executor_owner
from corral.domain.jobs import ClaimRequest, Job
from corral.domain.principals import Principal, Role
from corral.domain.states import JobStatus
from corral.domain.workers import Executor, ExecutorInfo, ExecutorState
from corral.errors import AlreadyExists, InvalidInput, NotFound
from corral.services.events import Hub
from corral.services.leasing import LeaseService
from corral.services.tokens import TokenService
from corral.store.base import JobFilter, Store

RUNNING_SCAN_LIMIT = 10000


@dataclass(frozen=True, slots=True)
class ExecutorView:
    executor: Executor
    state: ExecutorState
    running: list[Job]

    @property
    def reserved_cpus(self) -> float:
        """CPUs its running jobs reserve (placement); jobs without resources count nothing."""
        return sum(j.spec.resources.cpus or 0.0 for j in self.running if j.spec.resources)

    @property
    def reserved_memory_mb(self) -> int:
        return sum(j.spec.resources.memory_mb or 0 for j in self.running if j.spec.resources)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What a heartbeat may restate about a worker; ``None`` keeps the registered value."""

    cpus: float | None = None
    memory_mb: int | None = None
    isolation: str | None = None
    network_control: bool | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)

    def applied(self, info: ExecutorInfo) -> ExecutorInfo:
        return replace(
            info,
            cpus=info.cpus if self.cpus is None else self.cpus,
            memory_mb=info.memory_mb if self.memory_mb is None else self.memory_mb,
            isolation=info.isolation if self.isolation is None else self.isolation,
            network_control=(
                info.network_control if self.network_control is None else self.network_control
            ),
        )


@dataclass(frozen=True, slots=True)
class Registration:
    """A freshly registered executor and its own token, shown once."""

    executor: Executor
    token: str


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat renewed, and which of those jobs were asked to stop."""

    renewed: list[Job]
    cancel: list[str]


class ExecutorService:
    def __init__(
        self,
        store: Store,
        offline_after: float,
        tokens: TokenService,
        hub: Hub,
        leases: LeaseService,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._hub = hub
        self._leases = leases
        self.offline_after = offline_after

    async def register(self, principal: Principal, info: ExecutorInfo) -> Executor:
        """Idempotent for the token that registered the id; another token may take the
        id over only once its executor has gone silent (409 while it is alive)."""
        require(principal, Action.REGISTER_EXECUTOR)
        require_executor(principal, info.executor_id)
        now = time.time()
        found = await self._store.get_executor(info.executor_id)
        if (
            found is not None
            and found.info.principal_id != principal.id
            and principal.role is not Role.ADMIN
            and found.state(now, self.offline_after) is not ExecutorState.OFFLINE
        ):
            raise AlreadyExists(
                "executor id is in use by another live executor", executor_id=info.executor_id
            )
        executor = await self._store.upsert_executor(info, now, draining=False)
        if found is not None and found.info.principal_id != principal.id:
            await self._leases.hand_back(info.executor_id, principal.id)  # a takeover
        self._hub.fleet_changed()
        return executor

    async def register_exclusive(self, principal: Principal, info: ExecutorInfo) -> Registration:
        """Register ``info.executor_id`` unless a live executor holds it (``AlreadyExists``).

        The executor's principal is its new token, so its leases are fenced by it.
        """
        require(principal, Action.REGISTER_EXECUTOR)
        require_executor(principal, info.executor_id)
        token_id = str(uuid.uuid4())
        now = time.time()
        executor = await self._store.register_executor(
            replace(info, principal_id=token_id), now, live_after=now - self.offline_after
        )
        await self._tokens.revoke_for_executor(info.executor_id)
        # Whoever held the id before is gone for good (its token is revoked): its jobs
        # go back to the queue now, not when their leases run out.
        await self._leases.hand_back(info.executor_id, token_id)
        self._hub.fleet_changed()
        _, secret = await self._tokens.mint(
            "worker", f"worker:{info.executor_id}", executor_id=info.executor_id, token_id=token_id
        )
        return Registration(executor, secret)

    async def heartbeat(
        self, principal: Principal, executor_id: str, reported_status: str | None
    ) -> Beat:
        """Mark the executor alive and renew the leases its current registration holds.

        Only its owner (or an admin) may; jobs leased to an earlier registration of
        the same id are not renewed: that worker is gone and they must be reaped.
        """
        require(principal, Action.EXECUTE)
        require_executor(principal, executor_id)
        executor = await self._store.get_executor(executor_id)
        if executor is None:
            raise NotFound("Worker not found", worker_id=executor_id)
        require_executor_owner(principal, executor.info.principal_id)
        holder = executor.info.principal_id
        running = await self._running(executor_id)
        held = [(job.id, job.attempt) for job in running if job.lease_principal_id == holder]
        renewed = (
            await self._store.renew_executor_leases(executor_id, held, None, principal_id=holder)
            if held
            else []
        )
        now = time.time()
        await self._store.touch_executor(executor_id, now, reported_status)
        self._hub.fleet_changed()
        return Beat(renewed, [job.id for job in renewed if job.cancel_requested])

    async def claim_request(self, principal: Principal, limit: int) -> ClaimRequest:
        """What a worker token bound to one executor may claim: shell commands that
        fit the labels it registered with."""
        require(principal, Action.EXECUTE)
        if principal.executor_id is None:
            raise InvalidInput(
                "use the x-worker-token this worker got from /api/workers/register",
                field="x-worker-token",
            )
        executor = await self._store.get_executor(principal.executor_id)
        if executor is None:
            raise NotFound("Worker not found", worker_id=principal.executor_id)
        return ClaimRequest(
            executor_id=principal.executor_id,
            principal_id=principal.id,
            executor_ip=executor.info.ip,
            labels=frozenset(executor.info.labels),
            limit=limit,
            commands_only=True,
        )

    async def restate(self, principal: Principal, executor_id: str, capacity: Capacity) -> None:
        """A worker's capacity as its heartbeat restates it; unchanged values cost no write."""
        require(principal, Action.EXECUTE)
        require_executor(principal, executor_id)
        found = await self._store.get_executor(executor_id)
        if found is None:
            raise NotFound("Worker not found", worker_id=executor_id)
        require_executor_owner(principal, found.info.principal_id)
        info = capacity.applied(found.info)
        if info != found.info:
            await self._store.upsert_executor(info, time.time(), draining=found.draining)
            self._hub.fleet_changed()

    async def set_draining(self, principal: Principal, executor_id: str) -> None:
        require(principal, Action.EXECUTE)
        require_executor(principal, executor_id)
        found = await self._store.get_executor(executor_id)
        if found is None:
            raise NotFound("Worker not found", worker_id=executor_id)
        require_executor_owner(principal, found.info.principal_id)
        await self._store.upsert_executor(found.info, time.time(), draining=True)
        self._hub.fleet_changed()

    async def orders(self, executor_id: str) -> tuple[bool, bool]:
        """(drain, register): whether the executor is marked draining (by an admin, or by
        its own beat), and whether its record is one a claim made rather than a
        registration (an admin removed it while it ran), so it should register again."""
        found = await self._store.get_executor(executor_id)
        if found is None:
            return False, False
        return found.draining, not found.registered

    async def remove(self, principal: Principal, executor_id: str) -> None:
        found = await self._store.get_executor(executor_id)
        if found is None:
            raise NotFound("Worker not found", worker_id=executor_id)
        # A worker may deregister itself; only admins remove others.
        own = found.info.principal_id == principal.id
        require(principal, Action.EXECUTE if own else Action.ADMIN)
        await self._store.delete_executor(executor_id)
        await self._tokens.revoke_for_executor(executor_id)
        self._hub.fleet_changed()

    async def view(self, principal: Principal, executor_id: str) -> ExecutorView:
        require(principal, Action.READ)
        executor = await self._store.get_executor(executor_id)
        if executor is None:
            raise NotFound("Worker not found", worker_id=executor_id)
        state = executor.state(time.time(), self.offline_after)
        return ExecutorView(executor, state, await self._running(executor_id))

    async def views(self, principal: Principal, active_only: bool = False) -> list[ExecutorView]:
        require(principal, Action.READ)
        now = time.time()
        running, _ = await self._store.list_jobs(
            JobFilter(status=JobStatus.RUNNING), RUNNING_SCAN_LIMIT, 0
        )
        by_executor: dict[str, list[Job]] = {}
        for job in running:
            if job.executor_id is not None:
                by_executor.setdefault(job.executor_id, []).append(job)
        views = []
        for executor in await self._store.list_executors():
            state = executor.state(now, self.offline_after)
            if active_only and state == ExecutorState.OFFLINE:
                continue
            views.append(
                ExecutorView(executor, state, by_executor.get(executor.info.executor_id, []))
            )
        return views

    async def _running(self, executor_id: str) -> list[Job]:
        flt = JobFilter(status=JobStatus.RUNNING, executor_id=executor_id)
        jobs, _ = await self._store.list_jobs(flt, RUNNING_SCAN_LIMIT, 0)
        return jobs
