"""Reading a job's output from an offset, and following it live while the job runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from corral.auth.policy import Action, require
from corral.domain.jobs import Job
from corral.domain.outcomes import Piece, interleave
from corral.domain.principals import Principal
from corral.errors import NotFound, Unavailable
from corral.services.events import Hub, job_topic
from corral.store.base import Store
from corral.store.leases_port import OutputSlice

STREAMS = ("stdout", "stderr")
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 5.0  # a waiter re-reads the job at least this often (a missed wake-up)
OUTAGE_RECHECK_SECONDS = 1.0  # a follower's next look while the database is away


@dataclass(frozen=True, slots=True)
class Position:
    """Where a follower is: the attempt it reads, and the bytes of each stream it has.

    The output is in the database, so any replica can go on from here: a follower
    cut off with its replica asks another for what comes after (``follow``'s
    ``start``). A position of an earlier attempt means the follower has nothing of
    the current one, whose output starts afresh.
    """

    attempt: int = -1  # -1: no attempt yet, the current one is read from its start
    stdout: int = 0
    stderr: int = 0

    def offsets(self) -> dict[str, int]:
        return {"stdout": self.stdout, "stderr": self.stderr}


@dataclass(frozen=True, slots=True)
class OutputEvent:
    """One piece of a live follow: output bytes, a keep-alive, or the end."""

    kind: str  # "output" | "keepalive" | "end"
    stream: str = ""
    offset: int = 0
    data: bytes = b""
    job: Job | None = None
    after: Position | None = None  # an output event's: where a follow resumed after it starts


class OutputService:
    def __init__(self, store: Store, hub: Hub) -> None:
        self._store = store
        self._hub = hub

    async def read(
        self, principal: Principal, job_id: str, stream: str, offset: int, limit: int
    ) -> tuple[OutputSlice, Job]:
        require(principal, Action.READ)
        piece = await self._store.read_output(job_id, stream, offset, limit)
        job = await self._job(job_id)
        return piece, job

    async def interleaved(self, principal: Principal, job_id: str) -> tuple[Job, list[Piece]]:
        """The current attempt's output, both streams in arrival order."""
        require(principal, Action.READ)
        job, pieces = await self._store.read_pieces(job_id)
        return job, interleave(pieces)

    async def follow(
        self,
        principal: Principal,
        job_id: str,
        start: Position | None = None,
        chunk: int = 65536,
    ) -> AsyncIterator[OutputEvent]:
        """Check access and existence now, then stream from ``start`` (default: the
        current attempt from its first byte), so a 404 comes before any 200."""
        require(principal, Action.READ)
        await self._job(job_id)
        return self._follow(job_id, start or Position(), chunk)

    async def wait(self, principal: Principal, job_id: str, seconds: float) -> Job:
        """The job once it is finished, or as it stands when ``seconds`` passed.

        Woken by the job's signal (relayed between replicas), and re-read every few
        seconds anyway, so a waiter costs nothing while the job runs.
        """
        require(principal, Action.READ)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, seconds)
        topic = job_topic(job_id)
        try:
            while True:
                signal = self._hub.signal(topic)
                generation = signal.generation
                job = await self._job(job_id)
                left = deadline - loop.time()
                if job.terminal or left <= 0:
                    return job
                await signal.wait(generation, min(left, RECHECK_SECONDS))
        finally:
            self._hub.release(topic)

    async def _follow(self, job_id: str, start: Position, chunk: int) -> AsyncIterator[OutputEvent]:
        """Yield output as it is stored past ``start``, then one ``end`` event once the
        job is finished; each output event says the position after it.

        Waits on the job's signal between reads, so a quiet job costs nothing. While
        the database is away the stream stays open (keep-alives, a look every
        ``OUTAGE_RECHECK_SECONDS``) and goes on from where it was once it is back: its
        headers are long gone, so a 503 could not be said, only a cut stream.
        """
        offsets, attempt = start.offsets(), start.attempt
        topic = job_topic(job_id)
        while True:
            signal = self._hub.signal(topic)
            generation = signal.generation
            try:
                job = await self._job(job_id)
                if job.attempt != attempt:  # a new attempt starts its output afresh
                    attempt, offsets = job.attempt, dict.fromkeys(STREAMS, 0)
                pieces = [
                    await self._store.read_output(job_id, stream, offsets[stream], chunk)
                    for stream in STREAMS
                ]
            except Unavailable:
                if self._hub.closing:
                    return
                await signal.wait(generation, OUTAGE_RECHECK_SECONDS)
                yield OutputEvent("keepalive")
                continue
            moved = False
            for stream, piece in zip(STREAMS, pieces, strict=True):
                # A read ends where its byte count does, maybe inside a character: that
                # character's first bytes wait for the next read, which starts with them.
                # Only the stream's last bytes of an ended job go as they are: nothing
                # more can come to complete them.
                last = job.terminal and offsets[stream] + len(piece.data) >= piece.size
                data = piece.data if last else whole_characters(piece.data)
                if data:
                    moved = True
                    at = offsets[stream]
                    offsets[stream] += len(data)
                    after = Position(attempt, offsets["stdout"], offsets["stderr"])
                    yield OutputEvent("output", stream, at, data, after=after)
            if moved:
                continue
            if job.terminal:
                self._hub.release(topic)
                yield OutputEvent("end", job=job)
                return
            if self._hub.closing:
                return
            if not await signal.wait(generation, KEEPALIVE_SECONDS):
                yield OutputEvent("keepalive")

    async def _job(self, job_id: str) -> Job:
        job = await self._store.get_job(job_id)
        if job is None:
            raise NotFound("job not found", job_id=job_id)
        return job


def whole_characters(data: bytes) -> bytes:
    """``data`` without the first bytes of a UTF-8 character it ends inside of.

    Only a lead byte whose sequence runs past the end is held back (at most three
    bytes); anything else, invalid UTF-8 included, goes as it is.
    """
    for back in range(1, min(3, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:  # ASCII: the last character is whole
            return data
        if byte >= 0xF5:  # no character starts so: invalid, and goes as it is
            return data
        if byte >= 0xC0:  # a lead byte: its sequence is 2, 3 or 4 bytes long
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data[:-back] if length > back else data
    return data
