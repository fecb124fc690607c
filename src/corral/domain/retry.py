"""Retry and lease policy as pure functions of ``now``.

Which failures are retried: a lost lease (the worker went silent) always, while
retries remain; a reported failure when the worker asks for it (it could not
start the job, or was shut down mid-run), or, for a job submitted with
``retry_on_failure``, whenever the job's process ran and failed (a non-zero
exit, a signal, a timeout). Between attempts the job waits
``base * 2**(n-1)`` seconds after its n-th attempt, capped at ``max_seconds``,
give or take ``jitter`` (a fraction, drawn uniformly) so that jobs failing
together do not all come back in the same second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# 2**62 seconds is far past any cap; a larger exponent only risks OverflowError
# (a float overflows at 2**1024, which a job released ~1,025 times used to reach).
MAX_EXPONENT = 62
# No backoff is ever longer than a day, whatever the policy says.
MAX_DELAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff between attempts: base * 2**(attempt-1), capped, with jitter."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts_made: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt: finite, never negative, never above
        ``max_seconds`` (nor ``MAX_DELAY``) plus its jitter, for any ``attempts_made``."""
        exponent = min(max(0, attempts_made - 1), MAX_EXPONENT)
        cap = min(self.max_seconds, MAX_DELAY)
        raw = min(cap, self.base_seconds * 2.0**exponent)
        if not math.isfinite(raw) or raw < 0:
            raw = cap
        spread = raw * min(max(self.jitter, 0.0), 1.0)
        offset: float = (rng or random.Random()).uniform(-spread, spread)
        return max(0.0, raw + offset)


def retries_left(attempts_made: int, max_retries: int) -> bool:
    """A job may run ``max_retries + 1`` times in all."""
    return attempts_made <= max_retries


def wants_retry(asked: bool, retry_on_failure: bool, exit_code: int | None) -> bool:
    """Whether a reported failure asks for another attempt (retries left permitting).

    ``exit_code`` is None when the process never ran (refused input, no such
    binary): only the worker knows if trying again can help, so only ``asked``
    counts then.
    """
    return asked or (retry_on_failure and exit_code is not None)


def retries_remaining(attempts_made: int, max_retries: int) -> int:
    """Retries still possible after ``attempts_made`` attempts (the first is no retry)."""
    return max(0, max_retries - max(0, attempts_made - 1))


def describe_retries(
    max_retries: int, retry_on_failure: bool, attempts_made: int, policy: RetryPolicy
) -> str:
    """One line telling a person which retries apply to a job, for its page and the CLI."""
    if max_retries == 0:
        return "no retries: the first attempt is final"
    left = retries_remaining(attempts_made, max_retries)
    when = (
        "if it fails or its worker is lost"
        if retry_on_failure
        else "only if its worker is lost (a failure is final)"
    )
    backoff = (
        f"backoff {policy.base_seconds:g} s doubling, at most {policy.max_seconds:g} s, "
        f"±{policy.jitter:.0%}"
    )
    return f"retried {when}: up to {max_retries}, {left} left; {backoff}"


def lease_expiry(now: float, lease_seconds: float) -> float:
    return now + lease_seconds
