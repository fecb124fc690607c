"""The worker's two-stage stop as state: waits that end at their deadline, or soon after
a second signal, whatever the network or the jobs do.

The first signal (``requested``) starts the drain; every wait of the drain has a
deadline, so a dispatcher that refuses connections or never answers cannot hold
the worker past ``--drain-timeout`` plus the kill grace plus a short flush. The
second (``kill_now``) kills every job's group and leaves ``KILL_FLUSH`` seconds
to report them, then nothing waits any more.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

KILL_FLUSH = 2.0  # after a second signal: seconds to report the killed jobs, then exit


class Stopping:
    """``requested``: drain. ``kill_now``: kill jobs and cut every wait short."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.kill_now = asyncio.Event()
        self.cutoff = math.inf  # loop time past which nothing waits

    def kill(self) -> None:
        """The second signal (or a crashed side task): waits end within ``KILL_FLUSH``."""
        now = asyncio.get_running_loop().time()
        self.cutoff = min(self.cutoff, now + KILL_FLUSH)
        self.kill_now.set()

    def seconds_left(self, deadline: float) -> float:
        """Seconds until ``deadline`` (loop time) or the cutoff, whichever is first."""
        return max(0.0, min(deadline, self.cutoff) - asyncio.get_running_loop().time())

    async def wait_until(self, tasks: Sequence[asyncio.Future[Any]], deadline: float) -> None:
        """Wait for ``tasks`` until ``deadline`` (loop time). After a kill the wait lasts
        at most until the cutoff: the killed jobs get that long to report, no more."""
        if not tasks:
            return
        everything = asyncio.ensure_future(asyncio.wait(tasks))
        kill = asyncio.ensure_future(self.kill_now.wait())
        await asyncio.wait(
            [everything, kill],
            timeout=self.seconds_left(deadline),
            return_when=asyncio.FIRST_COMPLETED,
        )
        kill.cancel()
        if not everything.done() and self.kill_now.is_set():
            await asyncio.wait([everything], timeout=self.seconds_left(deadline))
        everything.cancel()


async def abandon(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel what is left and wait for it to unwind (a cancelled task ends at once)."""
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
