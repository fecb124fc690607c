"""What both adapters do when jobs that name dependencies are inserted.

Each dependant is settled once, in the inserting transaction, from its parents'
statuses as they stand under that transaction's locks; from then on the stores'
trigger (migration 0019) counts each parent's end. Parents in the same request come
first (``in_order``), so a dependant of a job cancelled at submit is cancelled too.

The adapters write in this order, whatever the batch: read the parents' statuses
(locking them on PostgreSQL), settle every new dependant, then record the edges and
add to the parents' ``dependants`` once per parent. While the settles are written no
new job has dependants yet, so the trigger stays out of it; and a parent named by
5,000 new jobs is updated once, not 5,000 times.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from corral.domain.dependencies import (
    Verdict,
    cancel_reason,
    counts,
    decide,
    decider,
    topological_order,
)
from corral.domain.jobs import NewJob
from corral.errors import InvalidInput
from corral.store.rows import BLOCKED


@dataclass(frozen=True, slots=True)
class Settled:
    """How a new dependant is stored: its status, counters and, if cancelled, why."""

    status: str
    left: int
    bad: int
    finished_at: float | None = None
    error_message: str | None = None

    def params(self) -> tuple[object, ...]:
        return (self.status, self.left, self.bad, self.finished_at, self.error_message)


def in_order(jobs: Sequence[NewJob]) -> list[NewJob]:
    """The jobs that name dependencies, each after those of the same batch it names."""
    by_id = {j.id: j for j in jobs if j.depends_on}
    order = topological_order({j.id: j.depends_on for j in by_id.values()})
    return [by_id[i] for i in order]


def settle(job: NewJob, found: dict[str, str], now: float) -> Settled:
    """Decide a new dependant from its parents' stored statuses (``found``: id -> status);
    ``InvalidInput`` naming the ids that do not exist."""
    missing = [p for p in job.depends_on if p not in found]
    if missing:
        raise InvalidInput(
            "depends_on names unknown jobs: " + ", ".join(missing[:10]),
            field="depends_on",
            unknown=missing,
        )
    parents = [(p, found[p]) for p in job.depends_on]
    left, bad = counts(status for _, status in parents)
    verdict = decide(job.run_if, left, bad)
    if verdict is Verdict.WAIT:
        return Settled(BLOCKED, left, bad)
    if verdict is Verdict.RUN:
        return Settled("pending", left, bad)
    why = cancel_reason(job.run_if, *decider(job.run_if, parents))
    return Settled("cancelled", left, bad, now, why)


def parent_counts(order: Sequence[NewJob]) -> Counter[str]:
    """How many of the new dependants name each parent (a job names a parent once)."""
    return Counter(parent for job in order for parent in job.depends_on)


def settle_all(
    order: Sequence[NewJob], found: dict[str, str], now: float
) -> list[tuple[str, Settled]]:
    """Settle each dependant in ``order``, a later one seeing how an earlier one of the
    same batch was settled (cancelled at submit, say)."""
    statuses = dict(found)
    settled = []
    for job in order:
        state = settle(job, statuses, now)
        statuses[job.id] = state.status
        settled.append((job.id, state))
    return settled


def edges(order: Sequence[NewJob]) -> list[tuple[str, str]]:
    return [(job.id, parent) for job in order for parent in job.depends_on]
