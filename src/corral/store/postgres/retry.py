"""Run a transaction again when PostgreSQL rolled it back to let another one through.

Row locks taken in one order keep Corral's own statements out of lock cycles, but the
triggers that end a job's dependants and admit them through their concurrency keys
(migrations 0019 and 0021) lock each key as they meet it: two jobs ending at once
whose dependants hold the same keys in opposite orders wait on each other.
PostgreSQL breaks such a cycle by rolling one transaction back (``deadlock_detected``,
40P01); for that and for ``serialization_failure`` (40001) its manual's advice is to
run the whole transaction again, which then passes, the other having committed.

So a transaction is retried whole, never one statement of it: after the error the
transaction is aborted and the effects of its earlier statements are gone. Its
caller must decide everything inside the function retried, so that a new try
starts from what the database holds then.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

log = logging.getLogger("corral.store.postgres")

T = TypeVar("T")
Work = Callable[[Any], Awaitable[T]]  # what a transaction does, given its connection

# Errors after which nothing of the transaction was kept and running it again is safe.
ROLLED_BACK: tuple[type[asyncpg.PostgresError], ...] = (
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
TRIES = 3
# Seconds before the second try, doubled before the third, each jittered by half
# either way so that two victims do not meet again: time for the winner to commit.
PAUSE = 0.01


async def rerun(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``, tried again while the database rolls it back, ``TRIES`` times in
    all; the last try's error propagates (``PostgresStore._conn`` makes it a 503)."""
    for tried in range(1, TRIES):
        try:
            return await attempt()
        except ROLLED_BACK as exc:
            log.info(
                "PostgreSQL rolled a transaction back (%s); running it again",
                exc.sqlstate,
                extra={"action": "transaction_retried", "sqlstate": exc.sqlstate, "try": tried},
            )
            await asyncio.sleep(PAUSE * 2 ** (tried - 1) * random.uniform(0.5, 1.5))
    return await attempt()
