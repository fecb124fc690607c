"""Claims waiting for work, which a submit may serve in its own transaction.

A worker's long-poll claim that finds nothing parks here until new work is signalled.
Without a hand-off, a submit commits its jobs, wakes the parked claim, and the claim
then runs a transaction of its own: two commits (two fsyncs) between a submit and a
worker hearing of its job. With one, the submit takes the oldest parked claims and
runs them in its own transaction, after the insert (``Store.insert_and_claim``): one
commit, and the submit's answer and the claim's leave together.

The claim is the store's ordinary claim, so it takes what it would have taken had it
run a moment later on its own: not necessarily the new jobs, maybe nothing (labels,
placement, priorities, fair share and concurrency keys all decide as usual). A claim
that got nothing goes back to waiting. Only claims parked in this process are seen;
a replica's waiting claims are served by its own submits, others' by the usual wake-up.

Once taken, a claim belongs to the submit until the store answers: its claimer waits
for that answer even past its own deadline, so a lease the store granted always
reaches a claimer (or, if the claimer is gone, is handed back by it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from corral.domain.jobs import ClaimRequest, Job


class ParkedClaim:
    """One waiting claim; ``handed`` resolves with what a submit's claim leased to it,
    or None when that submit failed (nothing was stored, so there is nothing new to see)."""

    __slots__ = ("handed", "request", "taken")

    def __init__(self, request: ClaimRequest) -> None:
        self.request = request
        self.taken = False
        self.handed: asyncio.Future[list[Job] | None] = asyncio.get_running_loop().create_future()


class ParkedClaims:
    """The claims parked in this process, oldest first."""

    def __init__(self) -> None:
        self._parked: dict[ParkedClaim, None] = {}  # insertion-ordered set

    def __bool__(self) -> bool:
        return bool(self._parked)

    def park(self, request: ClaimRequest) -> ParkedClaim:
        parked = ParkedClaim(request)
        self._parked[parked] = None
        return parked

    def leave(self, parked: ParkedClaim) -> None:
        """The claimer stopped waiting (woken, timed out, gone); a taken claim already left."""
        self._parked.pop(parked, None)

    def take(self, jobs: int) -> list[ParkedClaim]:
        """The oldest parked claims whose limits together cover ``jobs`` new jobs (at
        least one), now the caller's to serve: ``deliver`` must follow, whatever happens."""
        taken: list[ParkedClaim] = []
        room = 0
        for parked in self._parked:
            if taken and room >= jobs:
                break
            taken.append(parked)
            room += parked.request.limit
        for parked in taken:
            parked.taken = True
            del self._parked[parked]
        return taken

    @staticmethod
    def deliver(taken: Sequence[ParkedClaim], claimed: Iterable[list[Job]] | None) -> None:
        """Give each taken claim what the store leased to it (None: the submit failed,
        nothing was leased)."""
        answers = iter(claimed) if claimed is not None else None
        for parked in taken:
            jobs = next(answers) if answers is not None else None
            if not parked.handed.done():
                parked.handed.set_result(jobs)
