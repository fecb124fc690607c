"""Run slots: at most ``concurrency`` claimed jobs run at once, the others wait in line.

A prefetched job may wait long for its turn, and a drain, a cancel or a lost lease must
take it out of the line at once. Each waiter is a bare future in a queue, resolved True
when a slot is handed to it and False when its job is stopped first: no task per waiting
job and none per turn, which a worker running hundreds of short jobs a second feels.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class Stoppable(Protocol):
    """What the line needs of a job: whether it was stopped, and to hear when it is."""

    @property
    def stop_reason(self) -> object | None: ...

    def when_stopped(self, turn: asyncio.Future[bool]) -> None: ...


class RunSlots:
    """``take`` waits for a slot (in claim order) or the job's stop; ``give_back`` frees it."""

    def __init__(self, count: int) -> None:
        self.free = count
        self._line: deque[asyncio.Future[bool]] = deque()

    async def take(self, job: Stoppable) -> bool:
        """A run slot for ``job``; False, holding none, when it is stopped first."""
        if job.stop_reason is not None:
            return False
        if self.free and not self._line:
            self.free -= 1
            return True
        turn: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        job.when_stopped(turn)  # resolves it False, unless a slot came first
        try:
            granted = await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled() and turn.result():
                self.give_back()  # handed a slot as the cancel landed
            raise
        if granted and job.stop_reason is not None:  # stopped after its turn came
            self.give_back()
            return False
        return granted

    def give_back(self) -> None:
        """The slot goes to the first job still waiting, or back to the free ones."""
        while self._line:
            turn = self._line.popleft()
            if not turn.done():  # a stopped or cancelled waiter left already
                turn.set_result(True)
                return
        self.free += 1
