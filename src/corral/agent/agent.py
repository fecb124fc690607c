"""The worker agent: one async class that claims, runs, renews and reports.

Side tasks (convention 7), each supervised: if one dies of an unexpected error
the agent logs it loudly and stops, rather than running on half-blind.
- claim loop: long-polls ``POST /jobs/claim`` for as many jobs as there are free slots;
- heartbeat: one ``POST /executors/{id}/heartbeat`` every lease/3 renews every held
  lease and brings back the jobs to cancel or that were lost;
- reporter: delivers outcomes in batches (``reports.py``).
Claimed jobs run in ``runner.py``; the two-stage stop's waits live in ``stopping.py``.
Each held job also has a lease timer: if its lease could not be renewed before it
runs out (dispatcher unreachable), the job's group is killed, because another
worker may be running it already.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from corral.agent.backoff import Backoff
from corral.agent.binaries import BinaryCache
from corral.agent.dispatcher import (
    Dispatcher,
    DispatcherError,
    Unreachable,
    parse_job,
)
from corral.agent.executor import StopReason
from corral.agent.isolation import Isolation, Level
from corral.agent.limits import LimitPolicy
from corral.agent.machine import capacity_offer, machine_info
from corral.agent.netguard import guarded_client
from corral.agent.renewal import Fatal, Renewal, log_extra, sleep_or
from corral.agent.reports import ResultReporter
from corral.agent.runner import JobRunner, claim_began
from corral.agent.stopping import Stopping, abandon
from corral.agent.workdir import Executor
from corral.domain.jobs import MAX_CLAIM

log = logging.getLogger("corral.agent")

FLUSH_GRACE = 5.0  # seconds after the last job stopped to deliver outcomes and deregister
# The 4xx answers to a claim that a later try may not get; any other 4xx is for good.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


@dataclass(frozen=True)
class AgentConfig:
    """Everything `corral worker` was told, built once by the CLI and passed down."""

    server: str
    token: str
    concurrency: int = 4
    labels: tuple[str, ...] = ()
    name: str | None = None
    work_dir: Path = Path("./corral-work")
    drain_timeout: float = 60.0
    grace: float = 5.0
    claim_wait: float = 20.0
    # Jobs claimed ahead of a free slot; by default 4 x concurrency, Celery's multiplier too.
    prefetch: int | None = None
    # Let binary_url reach loopback, link-local and private addresses (netguard.py).
    allow_private_urls: bool = False
    # Capacity offered for placement (None: the machine's), sent at registration.
    cpus: float | None = None
    memory_mb: int | None = None
    # Each job's cgroup limits when it asks for none, and the most it may ask for.
    limits: LimitPolicy = field(default_factory=LimitPolicy)
    # How jobs are kept apart (isolation.py); the CLI resolves ``auto`` before this.
    isolation: Level = Level.NONE
    uid_range: range | None = None
    # Remount cgroup v2 with favordynmods when it lacks it (favordynmods.py): job starts
    # then skip an RCU grace period each.
    cgroup_favordynmods: bool = True


def _download_client(config: AgentConfig) -> httpx.AsyncClient:
    """The client for URLs a job names: guarded unless the operator said otherwise."""
    return httpx.AsyncClient() if config.allow_private_urls else guarded_client()


class Agent:
    """One worker: ``await Agent(config).run()`` until SIGTERM; returns the exit status.

    Slots are taken at claim time and freed when the process has exited and its
    output is flushed; the lease is held (and renewed) until the outcome is delivered.
    Up to ``prefetch`` claimed jobs wait for a run slot, so a finishing job is
    followed by the next one without a round trip to the dispatcher, and one
    claim brings back many jobs instead of one; a draining worker releases them.
    """

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.executor_id = config.name or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.dispatcher = Dispatcher(config.server, config.token, self.executor_id)
        self.reporter = ResultReporter(self.dispatcher)
        self.executor = Executor(
            config.work_dir,
            BinaryCache(config.work_dir / "binaries", _download_client(config)),
            grace=config.grace,
            files=self.dispatcher,
            limits=config.limits,
            isolation=Isolation(config.isolation, config.uid_range),
            cgroup_favordynmods=config.cgroup_favordynmods,
        )
        self.leases = Renewal(
            self.dispatcher, lambda: self.draining, self._register, self._drain_requested
        )
        self.held = self.leases.held
        self.runner = JobRunner(
            self.executor, self.dispatcher, self.leases, self.reporter, config.concurrency
        )
        self.claim_limit = MAX_CLAIM  # the server's own figure replaces it at registration
        self.capacity = config.concurrency + (
            4 * config.concurrency if config.prefetch is None else config.prefetch
        )
        self.draining = False
        self.fatal: BaseException | None = None
        self.stopping = Stopping()
        self._stop = self.stopping.requested
        self._side: list[asyncio.Task[None]] = []
        self._claimer: asyncio.Task[None] | None = None
        self._claim_call: asyncio.Future[list[dict[str, Any]]] | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> int:
        """Register, work until told to stop, drain, deregister. Returns the exit status."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_shutdown)
        try:
            if await self._register_or_stop():
                self._side = [
                    self._supervise(self.leases.run(), "heartbeat"),
                    self._supervise(self.reporter.run(), "reporter"),
                ]
                self._claimer = self._supervise(self._claim_loop(), "claim")
                await self._stop.wait()
                await self._shutdown()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
            await self.dispatcher.aclose()
            await self.executor.binaries.http.aclose()
            self.executor.close()
        if self.fatal is not None:
            log.error("worker stopped", extra={"action": "worker_failed", "error": str(self.fatal)})
            return 1
        return 0

    def request_shutdown(self) -> None:
        """First signal: drain. Second: kill every job's group at once."""
        if self._stop.is_set():
            log.warning("second signal: killing jobs", extra={"action": "shutdown_now"})
            self.stopping.kill()
            for held in self.held.values():
                held.execution.stop(StopReason.SHUTDOWN, now=True)
            return
        log.info("draining", extra={"action": "drain_started", "running": len(self.held)})
        self._stop.set()

    def _drain_requested(self) -> None:
        """An admin drained this worker: stop as a first signal would, never as a second."""
        if not self._stop.is_set():
            self.request_shutdown()

    async def _shutdown(self) -> None:
        """Two-stage shutdown, in this order (convention 8), bounded whatever the network
        does: running jobs get ``drain_timeout``, then the kill grace, then ``FLUSH_GRACE``
        for outcomes and deregistration; past that the worker exits and the dispatcher's
        reaper takes over. A second signal cuts every wait short."""
        loop = asyncio.get_running_loop()
        drain_end = loop.time() + self.config.drain_timeout
        hard_end = drain_end + self.config.grace + FLUSH_GRACE
        # 1. Stop claiming: abort the long poll in flight. The dispatcher leases nothing
        #    to a parked claim whose caller hung up and hands back what it leased as the
        #    caller left; a claim that answered anyway is released by the claim loop.
        self.draining = True
        self.runner.freed.set()
        if self._claim_call is not None:
            self._claim_call.cancel()
        if self._claimer is not None:
            await self.stopping.wait_until([self._claimer], hard_end)
        # 2. Tell the dispatcher (the next heartbeat says draining) and hand back what
        #    was claimed but never started; those runners release their job themselves.
        self.leases.beat_now()
        for held in list(self.held.values()):
            if not held.execution.started:
                held.execution.stop(StopReason.SHUTDOWN)
        # 3. Let running jobs finish up to the drain timeout, heartbeats still renewing.
        await self.stopping.wait_until(self._held_tasks(), drain_end)
        if self.held:
            extra = log_extra("drain_timeout", running=len(self.held))
            log.warning("drain timeout: stopping jobs", extra=extra)
        # 4. Whatever still runs is stopped (TERM -> grace -> KILL) and reported for retry.
        for held in list(self.held.values()):
            held.execution.stop(StopReason.SHUTDOWN, now=self.stopping.kill_now.is_set())
        await self.stopping.wait_until(self._held_tasks(), hard_end)
        # 5. Flush outcomes, stop the side tasks, then deregister.
        if self.fatal is None:
            flushed = asyncio.ensure_future(self.reporter.drained())
            await self.stopping.wait_until([flushed], hard_end)
            if not flushed.done():
                log.error("outcomes undelivered", extra={"action": "results_abandoned"})
            flushed.cancel()
        await abandon(self._held_tasks() + self._side)
        await self._deregister(min(10.0, max(0.5, self.stopping.seconds_left(hard_end))))

    def _held_tasks(self) -> list[asyncio.Task[None]]:
        return [h.task for h in self.held.values() if h.task is not None]

    async def _deregister(self, limit_s: float) -> None:
        try:
            await self.dispatcher.deregister(limit_s)
            log.info("deregistered", extra={"action": "worker_deregistered"})
        except (Unreachable, DispatcherError) as exc:
            log.warning("could not deregister", extra=log_extra("deregister_failed", exc))

    def _supervise(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._side_task_done)
        return task

    def _side_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        extra = log_extra("side_task_crashed", task=task.get_name())
        if isinstance(exc, Fatal):  # already explained where it was raised: no traceback
            log.error("side task stopped: %s", exc, extra=extra)
        else:
            log.error("side task crashed", exc_info=exc, extra=extra)
        self.fatal = self.fatal or exc
        self._stop.set()
        self.stopping.kill()  # running half-blind is worse than retrying elsewhere

    # ---- registration and claiming ---------------------------------------------------

    async def _register_or_stop(self) -> bool:
        """The first registration, given up at once on a signal (a dispatcher that holds
        the request unanswered must not hold the worker)."""
        registering = asyncio.ensure_future(self._register())
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({registering, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not registering.done():
            await abandon([registering])
            return False
        return registering.result()

    def _registration(self) -> dict[str, Any]:
        """The registration body: the machine, then what it offers jobs (capacity;
        isolation and network_control are merged in here too)."""
        info = machine_info(self.config.labels, self.config.concurrency)
        isolation = self.executor.isolation
        return {
            **info,
            **capacity_offer(self.config.cpus, self.config.memory_mb),
            "isolation": str(isolation.level),
            "network_control": isolation.network_control,
        }

    async def _register(self) -> bool:
        """Register, retrying with backoff until it works or a signal asks us to stop."""
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                answer = await self.dispatcher.register(self._registration())
                self._learn_claim_limit(answer)
                extra = log_extra("worker_registered", executor_id=self.executor_id)
                log.info("registered", extra=extra)
                return True
            except DispatcherError as exc:
                if exc.status in (400, 401, 403):
                    self.fatal = Fatal(f"registration refused: {exc}")
                    return False
                delay = backoff.next()
                if exc.status == 409:  # our id is held by a live executor under another token:
                    log.warning(  # it frees up once that one goes silent
                        "executor id in use; retrying",
                        extra=log_extra("registration_conflict", exc, delay=delay),
                    )
            except Unreachable as exc:
                delay = backoff.next()
                log.warning(
                    "dispatcher unreachable",
                    extra=log_extra("dispatcher_unreachable", exc, delay=delay),
                )
            await sleep_or(self._stop, delay)
        return False

    def _learn_claim_limit(self, answer: Any) -> None:
        """Take the server's claim limit from its registration answer (an older server
        sends none: the limit this code was built with stands)."""
        limit = answer.get("claim_limit") if isinstance(answer, dict) else None
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
            self.claim_limit = limit

    async def _claim_loop(self) -> None:
        backoff = Backoff()
        while not (self.draining or self._stop.is_set()):
            # Never ask for more than the server takes, whatever concurrency + prefetch say.
            free = min(self.capacity - self.runner.taken, self.claim_limit)
            # Claim at once while a run slot idles; otherwise gather half the prefetch
            # room first, so one round trip brings many jobs rather than one.
            idle_slot = self.runner.taken < self.config.concurrency
            batch = max(1, (self.capacity - self.config.concurrency) * 3 // 4)
            if free <= 0 or (not idle_slot and free < min(batch, self.claim_limit)):
                self.runner.freed.clear()
                await self.runner.freed.wait()
                continue
            sent = time.monotonic()
            try:
                jobs = await self._claim(free)
            except asyncio.CancelledError:
                if self.draining:  # the drain aborted the long poll: nothing was handed out
                    return
                raise
            except (Unreachable, DispatcherError) as exc:
                if isinstance(exc, DispatcherError) and _refused_for_good(exc.status):
                    log.error("claim refused", extra=log_extra("claim_refused", exc, n=free))
                    raise Fatal(f"claim refused: {exc}") from exc
                delay = backoff.next()
                log.warning("claim failed", extra=log_extra("claim_failed", exc, delay=delay))
                await sleep_or(self._stop, delay)
                continue
            backoff.reset()
            if self.draining:
                releases = (self.runner.release(parse_job(j)) for j in jobs)
                await asyncio.shield(asyncio.gather(*releases))
                return
            # Each lease is timed from when the claim was sent (plus the time the dispatcher
            # says the long poll waited before leasing it), never from when the answer was
            # read: a worker frozen meanwhile must find the lease gone, not fresh.
            for job in jobs:
                self.runner.start(job, claim_began(sent, job))

    async def _claim(self, n: int) -> list[dict[str, Any]]:
        """One long-poll claim, kept where the drain can abort it (``_claim_call``)."""
        call = asyncio.ensure_future(
            self.dispatcher.claim(n, self.config.claim_wait, self.config.labels)
        )
        self._claim_call = call
        try:
            return await call
        finally:
            self._claim_call = None


def _refused_for_good(status: int) -> bool:
    """A 4xx that no retry can turn into a claim (bad request, bad credentials, no such
    route): the worker stops loudly instead of idling registered for ever."""
    return 400 <= status < 500 and status not in RETRYABLE_4XX
