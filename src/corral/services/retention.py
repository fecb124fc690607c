"""Retention: the purge that keeps the database from growing without end.

A pass deletes finished jobs past their age (``domain.retention``) with everything
that hangs off them, then expired files, then executors silent for a week, then
(SQLite) gives surplus free pages back to the file system. Every step is a run of
short batches with a rest after each, longer while the server is busy: claims and
reports, which need the store's writer for a millisecond at a time, slip in between
batches instead of queueing behind one long delete, and the purge takes at most a
tenth of the writer while requests keep coming. On PostgreSQL a pass stops at the
first batch another replica (or ``corral prune``) holds the purge for; it is that
one's turn.

The server runs a pass every ``retention_interval`` seconds; ``corral prune`` runs
one by hand, with its own age, waiting for its turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter

from corral.domain.retention import EXECUTOR_RETENTION, PruneCursor, RetentionRule, describe
from corral.services.metrics import Metrics
from corral.store.base import Store
from corral.store.retention_port import Pruned

log = logging.getLogger("corral.services")

BATCH = 200  # jobs per batch: a few milliseconds of the writer (bench/retention.py)
RECLAIM_PAGES = 64  # pages given back per op: each is moved, about 0.1 ms apiece
# After each batch the purge rests a multiple of the time the batch took (at least
# MIN_PAUSE). While the server is answering requests it rests nine times as long,
# taking at most a tenth of the writer and of the server's CPU, so claims keep their
# speed; while nobody asks anything it rests as long as the batch took and a backlog
# drains five times faster. Without a way to tell (``corral prune``), it assumes busy.
BUSY_PAUSE_RATIO = 9.0
IDLE_PAUSE_RATIO = 1.0
MIN_PAUSE = 0.002


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass did; ``busy``: another process holds the purge, nothing more was
    done after its first refused batch."""

    pruned: Pruned
    files: int = 0
    executors: int = 0
    reclaimed_bytes: int = 0
    busy: bool = False
    finished_at: float = 0.0


class RetentionService:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        retention: float,
        *,
        batch: int = BATCH,
        pace: bool = True,
        requests: Callable[[], int] | None = None,
    ) -> None:
        """``requests``: how many requests the server has answered so far; the purge
        slows down while it grows (None: always go slowly). ``pace=False``: no rests."""
        self._store = store
        self._metrics = metrics
        self.retention = retention  # seconds a finished job is kept; 0: for ever
        self._batch = batch
        self._pace = pace
        self._requests = requests
        self._answered = -1
        self.last: PassReport | None = None  # the last pass that deleted jobs

    @property
    def description(self) -> str:
        """``30 days``, ``for ever``: for the dashboard and the logs."""
        return describe(self.retention)

    async def run_pass(
        self,
        now: float | None = None,
        *,
        older_than: float | None = None,
        dry_run: bool = False,
        wait: bool = False,
    ) -> PassReport:
        """One pass at ``now`` (the store's clock by default); ``older_than`` replaces
        the server's retention for jobs without their own. A dry run only counts the
        jobs it would delete."""
        at = await self._store.clock() if now is None else now
        rule = RetentionRule(at, self.retention if older_than is None else older_than)
        pruned, busy = await self._prune_jobs(rule, dry_run, wait)
        report = PassReport(pruned, busy=busy, finished_at=time.time())
        if not (busy or dry_run):
            pruned_files = self._metrics.pruned.labels(kind="files")
            files = await self._repeat(lambda: self._store.delete_expired_files(at), pruned_files)
            executors = await self._store.prune_executors(at - EXECUTOR_RETENTION)
            self._metrics.pruned.labels(kind="executors").inc(executors)
            reclaim = self._repeat(
                lambda: self._store.reclaim_space(RECLAIM_PAGES), self._metrics.reclaimed_bytes
            )
            report = PassReport(pruned, files, executors, await reclaim, finished_at=time.time())
        if not (dry_run or busy) and report.pruned.jobs:  # busy: another replica's turn
            self.last = report
        if not dry_run:
            self._log(report)
        return report

    async def _prune_jobs(
        self, rule: RetentionRule, dry_run: bool, wait: bool
    ) -> tuple[Pruned, bool]:
        total = Pruned()
        decided: set[str] = set()
        for stream in rule.streams():
            cursor: PruneCursor | None = PruneCursor(stream)
            while cursor is not None:
                started = time.monotonic()
                done = await self._store.prune_batch(
                    rule, cursor, self._batch, dry_run=dry_run, wait=wait, decided=decided
                )
                if done.busy:
                    return total, True
                total += done.pruned
                if not dry_run:
                    self._count(done.pruned)
                cursor = done.cursor
                await self._pause(time.monotonic() - started)
        return total, False

    async def _repeat(self, step: Callable[[], Awaitable[int]], counter: Counter) -> int:
        """Run a batch step until it does nothing more, pausing after each, and count
        what each did as it goes."""
        total = 0
        while True:
            started = time.monotonic()
            done = await step()
            counter.inc(done)
            total += done
            if done == 0:
                return total
            await self._pause(time.monotonic() - started)

    async def _pause(self, took: float) -> None:
        await asyncio.sleep(self.rest_after(took) if self._pace else 0)

    def rest_after(self, took: float) -> float:
        """Seconds to rest after a batch that took ``took``: long if a request was
        answered since the last batch (or nobody says), short otherwise."""
        busy = True
        if self._requests is not None:
            before, self._answered = self._answered, self._requests()
            busy = self._answered != before
        return max(MIN_PAUSE, took * (BUSY_PAUSE_RATIO if busy else IDLE_PAUSE_RATIO))

    def _count(self, pruned: Pruned) -> None:
        for kind, count in pruned.counts().items():
            if count:
                self._metrics.pruned.labels(kind=kind).inc(count)

    def _log(self, report: PassReport) -> None:
        counts = {k: v for k, v in report.pruned.counts().items() if v}
        if not (counts or report.files or report.executors or report.reclaimed_bytes):
            return
        log.info(
            "retention pass",
            extra={
                "action": "retention_pass",
                **counts,
                "files": report.files,
                "executors": report.executors,
                "reclaimed_bytes": report.reclaimed_bytes,
            },
        )
