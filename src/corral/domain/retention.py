"""Retention: how long finished jobs are kept, and which of them a purge may delete.

A finished job is kept for the server's ``--retention`` (30 days unless set; ``0``
keeps for ever) counted from its finish, or for its own ``retention_days`` when it
asked (``0`` keeps it for ever too). Past that it is deleted with everything that
hangs off it. Three things keep a job that is past its age (the store tells which,
as ``held``):

* a dependant that has not finished yet: it may still read the job's ``result``;
* a schedule that still exists keeps its newest fired job, so its "last jobs" is
  never empty once it has fired;
* a workflow is deleted whole or not at all: only once every one of its jobs is
  finished, past its own age and not held, so a workflow's graph never shows holes.

The store finds the candidates with SQL that mirrors ``RetentionRule.expired``
(the same arithmetic, so both agree on every row) and ``plan`` decides the batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from corral.errors import InvalidInput

DAY = 86400.0
DEFAULT_RETENTION = 30 * DAY
MAX_RETENTION_DAYS = 36500  # a hundred years: past it, ask for 0 (for ever)
EXECUTOR_RETENTION = 7 * DAY  # an executor silent this long is forgotten
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY}


def parse_duration(text: str | float) -> float:
    """``30d``, ``12h``, ``45m``, ``90s`` -> seconds; ``0`` (keep for ever) -> 0.0.

    A bare number other than 0 is refused rather than guessed at: ``30`` meant as
    days but read as seconds would delete every job half a minute after it ends.
    """
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        raw = text.strip().lower()
        number, unit = (raw[:-1], raw[-1]) if raw[-1:] in UNITS else (raw, "")
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (unit == "" and value != 0):
            raise ValueError(
                f"a duration is a number and a unit (s, m, h or d), such as 30d or 12h; "
                f"0 keeps for ever; got {text!r}"
            )
        seconds = value * UNITS.get(unit, 1.0)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration cannot be negative or infinite, got {text!r}")
    return seconds


def describe(seconds: float) -> str:
    """``30 days``, ``12 hours``, ``for ever``: how long a retention keeps jobs."""
    if seconds <= 0:
        return "for ever"
    for unit, size in (("day", DAY), ("hour", 3600.0), ("minute", 60.0)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


def check_retention_days(days: int | None) -> None:
    if days is not None and not 0 <= days <= MAX_RETENTION_DAYS:
        raise InvalidInput(
            f"retention_days must be between 0 (keep for ever) and {MAX_RETENTION_DAYS}",
            field="retention_days",
        )


class Stream(StrEnum):
    """The two walks a purge makes: jobs on the server's age, jobs on their own."""

    DEFAULT = "default"  # retention_days IS NULL, walked by finished_at
    OWN = "own"  # retention_days > 0, walked by finished_at + retention_days days


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Which finished jobs are past their age at ``now``."""

    now: float
    default_seconds: float  # the server's retention; 0: such jobs are kept for ever

    @property
    def default_cutoff(self) -> float:
        """Jobs following the server's retention that finished before this are past it."""
        return self.now - self.default_seconds

    def expired(self, finished_at: float | None, retention_days: int | None) -> bool:
        """The store's SQL says the same thing; keep the arithmetic identical."""
        if finished_at is None:
            return False
        if retention_days is None:
            return self.default_seconds > 0 and finished_at < self.default_cutoff
        return retention_days > 0 and finished_at + retention_days * 86400 < self.now

    def streams(self) -> list[Stream]:
        """The walks worth making: none on the server's age when it keeps for ever."""
        return [Stream.DEFAULT, Stream.OWN] if self.default_seconds > 0 else [Stream.OWN]


@dataclass(frozen=True, slots=True)
class PruneCursor:
    """Where a walk stands: past (``key``, ``seq``), the key being the finish time on
    the server's age and the expiry on a job's own. A pass walks each stream once,
    so jobs held back are read once per pass, not once per batch."""

    stream: Stream
    key: float = -math.inf
    seq: int = -1


@dataclass(frozen=True, slots=True)
class Finished:
    """A job as a purge sees it; ``key`` is where a walk found it (0.0 otherwise)."""

    id: str
    seq: int
    workflow_id: str | None
    terminal: bool
    finished_at: float | None
    retention_days: int | None
    key: float = 0.0


@dataclass(slots=True)
class Plan:
    """What one batch deletes, and the last candidate it got to (the next batch starts
    after it; candidates past it are left for that batch)."""

    job_ids: list[str] = field(default_factory=list)
    job_seqs: list[int] = field(default_factory=list)  # the same jobs: the key to delete by
    workflow_ids: list[str] = field(default_factory=list)
    last: Finished | None = None

    def take(self, job: Finished) -> None:
        self.job_ids.append(job.id)
        self.job_seqs.append(job.seq)


def plan(
    candidates: Sequence[Finished],
    members: Iterable[Finished],
    held: set[str],
    rule: RetentionRule,
    decided: set[str],
    limit: int,
) -> Plan:
    """The jobs and workflows one batch deletes, about ``limit`` jobs (a workflow is
    never split, so one may take it past).

    ``candidates``: jobs past their age, in the walk's order; ``members``: every job
    of the workflows among them; ``held``: the ids kept by a dependant or a schedule.
    ``decided`` collects the workflows judged in this pass (deleted or kept), so a
    workflow is judged once per pass however many batches meet it.
    """
    by_workflow: dict[str, list[Finished]] = {}
    for member in members:
        if member.workflow_id is not None:
            by_workflow.setdefault(member.workflow_id, []).append(member)
    result = Plan()
    for job in candidates:
        if len(result.job_ids) >= limit:
            break
        result.last = job
        workflow = job.workflow_id
        if workflow is None:
            if job.id not in held:
                result.take(job)
            continue
        if workflow in decided:
            continue
        decided.add(workflow)
        jobs = by_workflow.get(workflow, [job])
        if all(_deletable(j, held, rule) for j in jobs):
            for member in jobs:
                result.take(member)
            result.workflow_ids.append(workflow)
    return result


def next_cursor(cursor: PruneCursor, done: Plan) -> PruneCursor | None:
    """Past the last candidate the batch got to; None when the walk found none."""
    if done.last is None:
        return None
    return PruneCursor(cursor.stream, done.last.key, done.last.seq)


def _deletable(job: Finished, held: set[str], rule: RetentionRule) -> bool:
    return job.terminal and job.id not in held and rule.expired(job.finished_at, job.retention_days)
