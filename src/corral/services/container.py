"""Wiring: build the store and the services once, start and stop their background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from corral.domain.retry import RetryPolicy
from corral.errors import Unavailable
from corral.services.accounts import AccountService
from corral.services.agents import AgentService
from corral.services.allowances import SharedCounting
from corral.services.counting import Counting, LocalCounting
from corral.services.event_relay import RelayedEvents
from corral.services.events import Hub
from corral.services.executors import ExecutorService
from corral.services.files import FileService
from corral.services.jobs import IDEMPOTENCY_BATCH, JobService
from corral.services.leasing import LeaseService
from corral.services.metrics import Metrics
from corral.services.output import OutputService
from corral.services.owners import OwnerService
from corral.services.placement import PlacementService
from corral.services.projects import ProjectService
from corral.services.rates import FLUSH_EVERY, RateService
from corral.services.reaper import Reaper
from corral.services.relay import relay_changes, relay_job_topics
from corral.services.reports import ReportService
from corral.services.retention import RetentionService
from corral.services.scheduler import Scheduler
from corral.services.schedules import ScheduleService
from corral.services.sessions import SessionService
from corral.services.stats import StatsService, WaitEstimator
from corral.services.streams import StreamSlots
from corral.services.tasks import TaskService
from corral.services.tokens import TokenService
from corral.services.workflows import WorkflowService
from corral.settings import ServerSettings
from corral.store.base import Store

log = logging.getLogger("corral.services")
DEFAULT_GRACE = 60.0
FILE_SWEEP_INTERVAL = 60.0  # the idempotency sweep's longest pause
ACTIVITY_SWEEP_EVERY = 60  # activity flushes between two sweeps of old slots
WINDOW_BATCH = 1000  # ended rate-limit windows forgotten per write
IDEMPOTENCY_SWEEPS_PER_TTL = 4  # a record outlives its TTL by at most a quarter of it


def open_store(settings: ServerSettings) -> Store:
    if settings.database_url:
        from corral.store.postgres.store import PostgresStore

        pg: Store = PostgresStore(
            settings.database_url,
            output_cap=settings.output_cap,
            max_size=settings.database_pool_size,
            command_timeout=settings.database_command_timeout,
        )
        return pg
    from corral.store.sqlite.store import SqliteStore

    return SqliteStore(
        settings.sqlite_path,
        output_cap=settings.output_cap,
        synchronous=settings.sqlite_synchronous,
    )


@dataclass
class Services:
    store: Store
    settings: ServerSettings
    hub: Hub = field(default_factory=Hub)
    metrics: Metrics = field(default_factory=Metrics)
    started_at: float = field(default_factory=time.time)
    _reaper: asyncio.Task[None] | None = None
    _sweeper: asyncio.Task[None] | None = None
    _activity: asyncio.Task[None] | None = None
    _forgetter: asyncio.Task[None] | None = None
    _relay: asyncio.Task[None] | None = None
    _job_relay: asyncio.Task[None] | None = None
    _scheduling: asyncio.Task[None] | None = None
    _window_sweeper: asyncio.Task[None] | None = None
    _event_relay: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        cap = self.settings.output_cap
        self.jobs = JobService(self.store, self.hub, self.metrics, cap)
        self.projects = ProjectService(self.store)
        self.tasks = TaskService(self.store, self.jobs, self.projects)
        self.workflows = WorkflowService(self.store, self.jobs)
        self.leases = LeaseService(
            self.store, self.hub, self.metrics, RetryPolicy(), output_cap=cap
        )
        self.output = OutputService(self.store, self.hub)
        self.owners = OwnerService(self.store)
        self.tokens = TokenService(self.store)
        grace = self.settings.lease_grace
        self.reaper = Reaper(self.store, self.leases, DEFAULT_GRACE if grace is None else grace)
        self.executors = ExecutorService(
            self.store, self.settings.executor_offline_after, self.tokens, self.hub, self.leases
        )
        secret = self.settings.jwt_secret
        self.accounts = AccountService(self.store, secret.get_secret_value() if secret else None)
        self.reports = ReportService(self.store, self.leases, cap)
        self.stats = StatsService(self.store)
        self.rates = RateService(self.store, self.metrics)
        self.sessions = SessionService(self.store)
        self.agents = AgentService(self.store, self.leases)
        self.wait_estimate = WaitEstimator(self.store, self.settings.executor_offline_after)
        self.placement = PlacementService(self.store, self.settings.executor_offline_after)
        self.files = FileService(
            self.store,
            self.leases,
            self.settings.max_upload_bytes,
            self.settings.file_ttl,
            quota=self.settings.upload_quota_bytes,
        )
        self.streams = StreamSlots(self.settings.max_streams_per_principal)
        self.retention = RetentionService(
            self.store,
            self.metrics,
            self.settings.retention,
            requests=lambda: self.metrics.http.total,  # it slows down while they come
        )
        self.scheduler = Scheduler(self.store, self.hub, self.metrics)
        self.schedules = ScheduleService(self.store, self.jobs, self.scheduler)
        # Rate limits: one process owns a SQLite file, so its memory is the whole truth;
        # PostgreSQL replicas share their budgets through the database (allowances.py).
        self.shared_counting = (
            SharedCounting(self.store) if self.store.backend == "postgres" else None
        )
        self.counting: Counting = self.shared_counting or LocalCounting()

    async def start(self) -> None:
        await self.store.open()
        self.store.add_listener(self.hub.relayed)  # never hub.fire: that would echo back
        self.started_at = time.time()
        store_now = await self.store.clock()
        self.reaper.start(store_now, time.monotonic())
        await self.accounts.start()
        password = self.settings.admin_password
        await self.accounts.bootstrap_admin(
            self.settings.admin_email, password.get_secret_value() if password else None
        )
        due = await self.store.next_run_after(store_now)
        if due is not None:
            self.leases.wake_at(due, store_now)
        self._reaper = asyncio.create_task(self._reap_forever(), name="corral-reaper")
        self._sweeper = asyncio.create_task(self._retain_forever(), name="corral-retention")
        self._activity = asyncio.create_task(self._flush_activity_forever(), name="corral-rates")
        self._forgetter = asyncio.create_task(
            self._sweep_idempotency_forever(), name="corral-idempotency-sweeper"
        )
        self.store.add_listener(self.scheduler.heard)  # schedules changed on another replica
        self._scheduling = asyncio.create_task(
            self.scheduler.run_forever(), name="corral-scheduler"
        )
        if self.store.backend == "postgres":  # a SQLite file has one process: nobody to tell
            self._relay = asyncio.create_task(
                relay_changes(self.hub, self.store), name="corral-relay"
            )
            self._job_relay = asyncio.create_task(
                relay_job_topics(self.hub.start_relaying(), self.store), name="corral-job-relay"
            )
            relayed = RelayedEvents(self.store, self.hub.events)  # other replicas' job events
            self.hub.on_event = relayed.heard
            self._event_relay = asyncio.create_task(
                relayed.run_forever(), name="corral-event-relay"
            )
        if self.shared_counting is not None:
            self.store.add_listener(self.shared_counting.heard)  # windows spent elsewhere
            self._window_sweeper = asyncio.create_task(
                self._sweep_windows_forever(self.shared_counting), name="corral-window-sweeper"
            )

    async def stop(self) -> None:
        self.hub.close()
        tasks = (
            self._reaper,
            self._sweeper,
            self._activity,
            self._forgetter,
            self._relay,
            self._job_relay,
            self._scheduling,
            self._window_sweeper,
            self._event_relay,
        )
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # the last second's counts, if the store is up
            await self.rates.flush()
        await self.store.close()

    async def _reap_forever(self) -> None:
        """Return lost leases to the queue, sparing each its grace after a start or a
        clock jump (see ``Reaper``)."""
        while True:
            await asyncio.sleep(self.settings.reaper_interval)
            try:
                reaped = await self.reaper.run_once(time.monotonic())
            except Unavailable:  # the store logs the outage once; the next pass retries
                continue
            except Exception:
                log.exception("reaper pass failed", extra={"action": "reap_failed"})
                continue
            if reaped:
                log.info("leases expired", extra={"action": "leases_reaped", "count": len(reaped)})

    async def _retain_forever(self) -> None:
        """A purge every ``retention_interval``: finished jobs past their age, expired
        files (and abandoned uploads), executors silent for a week (``RetentionService``)."""
        while True:
            await asyncio.sleep(self.settings.retention_interval)
            try:
                await self.retention.run_pass()
            except Unavailable:  # the store logs the outage once; the next pass retries
                pass
            except Exception:
                log.exception("retention pass failed", extra={"action": "retention_failed"})

    async def _sweep_idempotency_forever(self) -> None:
        """Forget idempotency records past ``idempotency_ttl``, a small batch per write.

        Every replica sweeps (PostgreSQL's batches skip each other's rows). Each batch
        is its own short write, so requests keep their turn on SQLite's one writer.
        """
        keep = self.settings.idempotency_ttl
        interval = min(FILE_SWEEP_INTERVAL, keep / IDEMPOTENCY_SWEEPS_PER_TTL)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._forget_old_keys(keep)
            except Unavailable:  # the store logs the outage once; the next sweep retries
                pass
            except Exception:
                log.exception(
                    "idempotency sweep failed", extra={"action": "idempotency_sweep_failed"}
                )

    async def _forget_old_keys(self, keep: float) -> None:
        """Batch after batch until one comes back short: nothing that old is left."""
        while True:
            if await self.jobs.forget_idempotency(time.time(), keep) < IDEMPOTENCY_BATCH:
                return
            await asyncio.sleep(0)  # a SQLite write never yields: let requests in between

    async def _sweep_windows_forever(self, counting: SharedCounting) -> None:
        """Forget rate-limit windows that ended, a batch per write, every minute."""
        while True:
            await asyncio.sleep(FILE_SWEEP_INTERVAL)
            try:
                while await counting.forget(WINDOW_BATCH) == WINDOW_BATCH:
                    pass  # a full batch: there may be more
            except Exception:
                log.exception("window sweep failed", extra={"action": "window_sweep_failed"})

    async def _flush_activity_forever(self) -> None:
        """Add this replica's claims, finishes and waits to the shared activity slots
        every second, and forget the slots past the dashboard's window now and then.

        A failed addition (the database away) is kept and added with the next one.
        """
        flushes = 0
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self.rates.flush()
                flushes += 1
                if flushes % ACTIVITY_SWEEP_EVERY == 0:
                    await self.rates.forget()
            except Exception:
                log.warning("could not add to the activity slots", extra={"action": "rates_failed"})
