"""The reaper: returns lost leases to the queue, sparing them after a restart or a jump.

Expiries are wall-clock times (the store's clock), so three events make every lease
look expired at once although its executor is alive: the dispatcher was down
(nobody could renew), so was its database (likewise), or the clock stepped
forward. After any of them, each lease is spared for its own period (at most
``grace``) so its executor can renew it; a job with a 3 s lease is reaped 3 s
after a restart, not after the whole grace. A jump is told from a restart by
reading the wall clock beside the monotonic one at each pass (``ClockWatch``);
a pass that met the database away counts as a restart. Both readings are
arguments of ``run_once``, so tests move clocks instead of sleeping.
"""

from __future__ import annotations

import logging
import time

from corral.domain.jobs import Job
from corral.domain.leases import ClockWatch
from corral.errors import Unavailable
from corral.services.leasing import LeaseService
from corral.store.base import Store

log = logging.getLogger("corral.services")


class Reaper:
    def __init__(self, store: Store, leases: LeaseService, grace: float) -> None:
        self._store = store
        self._leases = leases
        self.grace = grace
        self._watch: ClockWatch | None = None

    def start(self, wall: float, mono: float) -> None:
        """The dispatcher starts now: every lease gets its grace from here."""
        self._watch = ClockWatch.start(wall, mono)

    async def run_once(self, mono: float, wall: float | None = None) -> list[Job]:
        """One pass at monotonic time ``mono``; ``wall`` defaults to the store's clock.

        The pass reaps with the very reading its jump check approved, so a jump
        landing mid-pass cannot expire what the check spared.
        """
        try:
            return await self._pass(mono, wall)
        except Unavailable:
            # Nobody renewed through this database meanwhile: once it is back, every
            # lease gets its own period again, as after a restart.
            self._watch = None
            raise

    async def _pass(self, mono: float, wall: float | None) -> list[Job]:
        settled = mono
        if wall is None:
            wall = await self._store.clock()
            settled = max(mono, time.monotonic())  # the reading was taken in between
        watch = self._watch or ClockWatch.start(wall, mono)
        if watch.jumped_to(wall, settled):
            log.warning(
                "wall clock jumped forward; sparing leases for their grace",
                extra={"action": "clock_jump", "seconds": round(wall - watch.wall, 3)},
            )
        self._watch = watch = watch.observe(wall, mono, settled)
        spare = watch.spare_longer_than(self.grace)
        return await self._leases.reap(now=wall, spare_longer_than=spare)
