"""What a job may ask for (cpus, memory, processes) and what this worker allows.

A claimed job's ``resources`` become a ``Resources``; the worker's ``LimitPolicy`` fills
in its defaults and refuses a job that asks for more than its maxima. How the result
is enforced (cgroup files, or rlimits where no cgroup is writable) is ``cgroups.py``'s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class LimitError(Exception):
    """A job asks for more than this worker allows; it is not run here."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Resources:
    """What a job asks for (``resources`` on the wire); None means nothing asked."""

    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = None

    @classmethod
    def parse(cls, value: object) -> Resources | None:
        """The claimed job's ``resources`` object, or None when absent or empty."""
        if not isinstance(value, dict):
            return None
        found = cls(
            cpus=_positive(value.get("cpus")),
            memory_mb=_whole(_positive(value.get("memory_mb"))),
            pids=_whole(_positive(value.get("pids"))),
        )
        return None if found == cls() else found


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    """The worker's defaults (for what a job does not ask) and maxima (refused above)."""

    default_memory_mb: int | None = None
    max_memory_mb: int | None = None
    default_pids: int | None = None
    max_pids: int | None = None

    def apply(self, asked: Resources | None) -> Resources:
        """The limits a job runs under, or ``LimitError`` when it asks for too much."""
        asked = asked or Resources()
        memory = asked.memory_mb or self.default_memory_mb
        pids = asked.pids or self.default_pids
        if memory and self.max_memory_mb and memory > self.max_memory_mb:
            raise LimitError(
                f"the job asks for {memory} MiB of memory; this worker allows "
                f"at most {self.max_memory_mb} MiB"
            )
        if pids and self.max_pids and pids > self.max_pids:
            raise LimitError(
                f"the job asks for {pids} processes; this worker allows at most {self.max_pids}"
            )
        cpus = min(asked.cpus, float(os.cpu_count() or 1)) if asked.cpus else None
        return Resources(cpus=cpus, memory_mb=memory, pids=pids)


def _positive(value: object) -> float | None:
    """A positive number from the wire; anything else (null, a bool, text) is "not asked"."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _whole(value: float | None) -> int | None:
    return None if value is None else max(1, int(value))
