"""The retention half of the storage port (``Store`` extends it), and what it answers."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

from corral.domain.retention import PruneCursor, RetentionRule

# The statuses a purge may delete, spelt for SQL; the partial indexes of migration 0023
# repeat this list word for word, which is what lets the planner use them.
TERMINAL_SQL = "('completed', 'failed', 'cancelled')"


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows one batch deleted (or, in a dry run, ``jobs`` it would delete)."""

    jobs: int = 0
    attempts: int = 0
    output_chunks: int = 0
    artifacts: int = 0
    file_chunks: int = 0
    idempotency_keys: int = 0
    workflows: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class PruneBatch:
    """One batch's work. ``cursor`` is where the next batch of the walk starts, None
    once the walk found nothing more; ``busy``: another process holds the purge (a
    replica, or ``corral prune``), so nothing was read or deleted."""

    pruned: Pruned
    cursor: PruneCursor | None
    busy: bool = False


class RetentionStore(Protocol):
    async def prune_batch(
        self,
        rule: RetentionRule,
        cursor: PruneCursor,
        limit: int,
        *,
        dry_run: bool = False,
        wait: bool = False,
        decided: set[str] | None = None,
    ) -> PruneBatch:
        """Delete up to about ``limit`` finished jobs past their age from ``cursor`` on,
        with their attempts, output, artifacts (files and chunks), idempotency records
        and dependency edges, and the workflows they emptied: one short transaction.

        Only one process purges at a time: on PostgreSQL an advisory lock (``wait``
        waits for it, else a held lock answers ``busy``); on SQLite the one writer.
        ``decided``: the workflows judged so far in this pass (``retention.plan``).
        ``dry_run`` deletes nothing and counts the jobs it would delete."""

    async def prune_executors(self, offline_before: float) -> int:
        """Forget executors silent since before ``offline_before`` that hold no running
        job; return how many went."""

    async def reclaim_space(self, max_pages: int) -> int:
        """Give up to ``max_pages`` free pages back to the file system (SQLite's
        incremental vacuum); return the bytes given back. PostgreSQL: 0, autovacuum
        makes deleted rows' space reusable."""

    async def compact(self) -> None:
        """Rewrite the database without its free space, and on SQLite turn on the
        incremental vacuum that ``reclaim_space`` needs (``corral prune --vacuum``)."""
