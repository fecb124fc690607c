"""Concurrency keys: at most N jobs sharing a key run at once.

A job may carry a key (``deploy-prod``) and a limit (1 to 1000, default 1). The
stores keep the rule with an admission gate rather than a check in the claim:

    stored status   holds a slot   claimable
    held            no             no      waits for a slot of its key
    pending         yes            yes     admitted: the claim takes it like any job
    running         yes            -

A keyed job enters as ``held``; a job is admitted (held -> pending) only while
fewer than its limit of the key's jobs are pending or running, best first
(priority, then fair-share turn, then age). A slot frees when one of those ends
(completed, failed, cancelled, lost lease out of retries); a job requeued for
another attempt keeps its slot. Since at most ``limit`` keyed jobs are ever
claimable, the claim itself needs no check at all: jobs without a key pay
nothing, and two racing claims cannot exceed the limit, whatever the store.
The stores serialise admissions per key (one writer on SQLite, a per-key lock on
PostgreSQL), which is what makes the gate atomic.

A held job reads back as pending; ``held_reason`` says what holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from corral.errors import InvalidInput

MAX_LIMIT = 1000
DEFAULT_LIMIT = 1
_KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def validate(key: str | None, limit: int) -> None:
    """``InvalidInput`` naming the field for a key or limit the stores cannot keep."""
    if key is None:
        if limit != DEFAULT_LIMIT:
            raise InvalidInput(
                "concurrency_limit needs a concurrency_key", field="concurrency_limit"
            )
        return
    if not _KEY.match(key) or not key.strip():
        raise InvalidInput(
            "concurrency_key must be 1-200 characters, no control characters",
            field="concurrency_key",
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"concurrency_limit must be between 1 and {MAX_LIMIT}", field="concurrency_limit"
        )


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """Where one key stands: its jobs running, admitted but not running yet (queued,
    or waiting out a retry's backoff), and held back. ``limit`` is the limit of the
    first held job (the one admitted next), or None when none is held."""

    key: str
    running: int = 0
    queued: int = 0
    held: int = 0
    limit: int | None = None

    @property
    def taken(self) -> int:
        return self.running + self.queued


def held_reason(key: str, limit: int, usage: KeyUsage | None) -> str:
    """Why a held job waits, in words: the key, its limit, and who holds the slots."""
    usage = usage or KeyUsage(key)
    words = f"{usage.running} running"
    if usage.queued:
        words += f", {usage.queued} about to start"
    if usage.taken >= limit:
        return f"concurrency key {key} is at its limit of {limit} ({words})"
    return f"waits its turn under concurrency key {key} (limit {limit}; {words})"
