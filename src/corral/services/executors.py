"""Executors (worker agents and external pullers): registration, listing, removal."""

from __future__ import annotations

import time
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.jobs import Job
from corral.domain.principals import Principal
from corral.domain.states import JobStatus
from corral.domain.workers import Executor, ExecutorInfo, ExecutorState
from corral.errors import NotFound
from corral.store.base import JobFilter, Store

RUNNING_SCAN_LIMIT = 10000


@dataclass(frozen=True, slots=True)
class ExecutorView:
    executor: Executor
    state: ExecutorState
    running: list[Job]


class ExecutorService:
    def __init__(self, store: Store, offline_after: float) -> None:
        self._store = store
        self.offline_after = offline_after

    async def register(self, principal: Principal, info: ExecutorInfo) -> Executor:
        require(principal, Action.REGISTER_EXECUTOR)
        return await self._store.upsert_executor(info, time.time(), draining=False)

    async def set_draining(self, principal: Principal, executor_id: str) -> None:
        require(principal, Action.EXECUTE)
        found = await self._store.get_executor(executor_id)
        if found is None:
            raise NotFound("executor not found", executor_id=executor_id)
        await self._store.upsert_executor(found.info, time.time(), draining=True)

    async def remove(self, principal: Principal, executor_id: str) -> None:
        found = await self._store.get_executor(executor_id)
        if found is None:
            raise NotFound("executor not found", executor_id=executor_id)
        # A worker may deregister itself; only admins remove others.
        own = found.info.principal_id == principal.id
        require(principal, Action.EXECUTE if own else Action.ADMIN)
        await self._store.delete_executor(executor_id)

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
