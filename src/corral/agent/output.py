"""Forward a job's stdout/stderr to the dispatcher in batches, in bounded memory.

Pipes are read from the event loop in 64 KiB chunks, never by line, so a 100 MB
line without a newline costs no more than any other output. Each stream keeps
at most ``budget`` bytes in memory; past that, and whenever a send fails (the
dispatcher is unreachable, restarting, or answers 5xx/429), output goes to a
per-job spool on disk (``spool.py``) and is sent again, in order, with backoff:
while the job runs, then by ``settle`` before its outcome is reported. Every
chunk says where it starts in the stream, so one resent after a lost answer is
stored once. Only output past the spool's bound is lost, and then a marker line
in the stream says how much, with the stream flagged truncated. Once the
dispatcher answers ``truncated: true`` (it stores at most ``--output-cap`` bytes
per stream), nothing more is sent for that stream and the pipe is merely
drained, so the job never blocks on a full pipe.

The job's secret values are blanked as the pipes are read (``masking.py``), before
anything is kept, spooled or sent.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from corral.agent.backoff import Backoff
from corral.agent.masking import SecretMasker, secret_patterns
from corral.agent.process import READ_SIZE
from corral.agent.spool import STREAMS, Chunk, DiskQuota, Spool

log = logging.getLogger("corral.agent.output")

SPOOL_LIMIT = 8 << 20  # bytes of unsent output kept on disk per stream of a job
SPOOL_QUOTA = 256 << 20  # ... and by all the jobs of one worker together
# Stream switches kept in order between two sends: each costs one more request, so a
# job alternating streams line by line sends at most this many more chunks per batch.
MAX_RUNS = 4
UTF8 = codecs.getincrementaldecoder("utf-8")  # looked up once, not for every stream


class OutputSink(Protocol):
    """Where chunks go; answers whether the dispatcher truncated the stream."""

    async def send(self, chunk: Chunk) -> bool: ...


class StopSending(Exception):
    """Raised by a sink when no more output may be sent (the attempt lost its lease)."""


def marker(lost: int, after_newline: bool) -> bytes:
    """The line put in a stream where output was lost."""
    lead = "" if after_newline else "\n"
    line = f"[corral: {lost} bytes of output lost while the dispatcher was unreachable or slow]"
    return f"{lead}{line}\n".encode()


class StreamBuffer:
    """Bytes of one stream read but neither sent nor spooled yet, and what became of
    the stream so far: where its next chunk starts, what was lost."""

    def __init__(
        self, budget: int, name: str = "stdout", masker: SecretMasker | None = None
    ) -> None:
        self.name = name
        self.budget = budget
        self.masker = masker or SecretMasker([])
        self.pending = bytearray()
        self.read = 0
        self.offset = 0  # UTF-8 bytes cut into chunks so far: the next chunk's offset
        self.lost = 0  # bytes lost since the last marker
        self.dropped = 0  # bytes lost in all
        self.closed = False  # the dispatcher truncated the stream, or sending stopped
        self._newline = True  # the last byte cut was a newline (or nothing was cut)
        self._decoder = UTF8(errors="replace")

    def feed(self, data: bytes) -> None:
        self.read += len(data)
        if not self.closed:
            self.pending += self.masker.feed(data)

    def end(self) -> None:
        """EOF: the end held back in case it began a secret is output like the rest."""
        if not self.closed:
            self.pending += self.masker.flush()

    def cut(self, limit: int, room: int | None = None, final: bool = False) -> Chunk | None:
        """The next chunk: up to ``limit`` pending bytes, decoded (a UTF-8 sequence split
        across reads is carried over), led by a marker when output was lost before it.
        Text past ``room`` (what the spool can still take) is lost."""
        raw = bytes(self.pending[:limit])
        del self.pending[:limit]
        if room is not None and room <= 0:  # nowhere to put it: count it, skip decoding
            self._decoder.reset()
            self._lose(len(raw))
            return None
        text = self._decoder.decode(raw, final=final and not self.pending).encode()
        lost_here = 0
        if room is not None and len(text) > room:
            kept = _utf8_prefix(text, room)
            lost_here, text = len(text) - kept, text[:kept]
        lead = marker(self.lost, self._newline) if self.lost and text else b""
        if lead:
            self.lost = 0
        self._lose(lost_here)
        return self._chunk(lead + text, truncated=bool(lead))

    def closing_marker(self) -> Chunk | None:
        """At the end: the marker for output lost after the last chunk, if any."""
        if not self.lost:
            return None
        lead = marker(self.lost, self._newline)
        self.lost = 0
        return self._chunk(lead, truncated=True)

    def discard(self) -> None:
        """Stop: nothing more of this stream will be sent."""
        self.closed = True
        self.pending.clear()

    def _lose(self, count: int) -> None:
        self.lost += count
        self.dropped += count

    def _chunk(self, data: bytes, truncated: bool) -> Chunk | None:
        if not data:
            return None
        chunk = Chunk(self.name, self.offset, data, truncated)
        self.offset += len(data)
        self._newline = data.endswith(b"\n")
        return chunk


def _utf8_prefix(data: bytes, limit: int) -> int:
    """The longest prefix of ``data`` within ``limit`` bytes that ends on a character."""
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return end


class OutputForwarder:
    """Collects one job's output and sends it through ``sink`` every ``interval`` or
    ``batch`` bytes, from a single sender task that exists only while there is output.

    ``close`` (at the job's end) sends what is left while the dispatcher answers and
    leaves the rest in the spool; ``settle`` delivers that before the outcome is
    reported; ``discard`` drops it when the attempt is no longer ours."""

    def __init__(
        self,
        sink: OutputSink,
        *,
        interval: float = 0.1,
        batch: int = 64 * 1024,
        budget: int = 1 << 20,
        spool_limit: int = SPOOL_LIMIT,
        spool_dir: Path | None = None,
        spool_quota: DiskQuota | None = None,
        job_id: str = "",
        secret_env: dict[str, str] | None = None,
    ) -> None:
        self.sink = sink
        self.interval = interval
        self.batch = batch
        self.job_id = job_id
        patterns = secret_patterns((secret_env or {}).values())  # blanked as pipes are read
        self.streams = {
            name: StreamBuffer(budget, name, SecretMasker(patterns)) for name in STREAMS
        }
        # The order bytes were read across the two streams, as [stream, bytes] runs:
        # chunks are cut at each switch so the dispatcher stores them as they came
        # (``corral logs`` interleaves by arrival). Only a hint: data never depends on it.
        self._runs: deque[list[Any]] = deque()
        self.spool = Spool(spool_dir, spool_limit, spool_quota)
        self._backoff = Backoff(base=0.25, cap=10.0)
        self._failing = False  # the last send failed: output waits in the spool
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._sender: asyncio.Task[None] | None = None

    def feed(self, stream: str, data: bytes) -> None:
        buffer = self.streams[stream]
        buffer.feed(data)
        if buffer.closed or not buffer.pending:
            return
        if self._runs and self._runs[-1][0] == stream:
            self._runs[-1][1] += len(data)
        elif len(self._runs) < MAX_RUNS:  # past that, the old per-stream batching
            self._runs.append([stream, len(data)])
        if len(buffer.pending) > buffer.budget:
            self._spill(buffer)
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        if len(buffer.pending) >= self.batch or len(self.spool):
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._wake.set)

    async def close(self) -> None:
        """The pipes hit EOF: send what is left while the dispatcher takes it; what it
        does not stays in the spool for ``settle``. Never waits out an outage."""
        for buffer in self.streams.values():
            buffer.end()
        self._closed.set()
        if self._sender is None:
            if not any(buffer.pending for buffer in self.streams.values()):
                return
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        self._wake.set()
        await self._sender

    async def settle(self) -> None:
        """Deliver everything still unsent, retrying with backoff until the dispatcher
        has it all or refuses the attempt; called before the outcome is reported."""
        backoff = Backoff(base=0.25, cap=10.0)
        delivered = await self._flush(final=True)
        while not delivered:
            await asyncio.sleep(backoff.next())
            delivered = await self._flush(final=True)
        self.spool.close()

    def discard(self) -> None:
        """The attempt is not ours any more (or is over): forget what was not sent."""
        for buffer in self.streams.values():
            buffer.discard()
        self.spool.close()

    def dropped(self) -> dict[str, int]:
        return {name: buffer.dropped for name, buffer in self.streams.items()}

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._timer = None
            closing = self._closed.is_set()
            if closing and self._failing:  # known down: no new wait at the job's end
                self._spill_all()
                return
            if await self._flush(final=closing):
                self._backoff.reset()
                if closing:
                    return
                continue
            if closing:
                self._spill_all()
                return
            with contextlib.suppress(TimeoutError):  # back off; the job's end cuts it short
                await asyncio.wait_for(self._closed.wait(), self._backoff.next())
            self._wake.set()

    async def _flush(self, final: bool) -> bool:
        """Send everything, oldest first; False when a send failed (it stays kept)."""
        while (found := self._next(final)) is not None:
            chunk, spooled = found
            if not await self._send(chunk):
                if not spooled:  # older than anything spooled while it was on the wire
                    self._push(chunk, first=True)
                return False
            if spooled:
                self.spool.forget(chunk)
        return True

    def _next(self, final: bool) -> tuple[Chunk, bool] | None:
        """The oldest unsent chunk, and whether it is the spool's: the spool's head
        comes first (it is older), then what is in memory, then closing markers."""
        while (chunk := self.spool.peek()) is not None:
            if not self.streams[chunk.stream].closed:
                return chunk, True
            self.spool.forget(chunk)
        if (chunk := self._next_in_read_order(final)) is not None:
            return chunk, False
        for buffer in self.streams.values():
            if buffer.closed:
                continue
            if buffer.pending and (chunk := buffer.cut(self.batch * 4, final=final)):
                return chunk, False
            if final and not buffer.pending and (chunk := buffer.closing_marker()):
                return chunk, False
        return None

    def _next_in_read_order(self, final: bool) -> Chunk | None:
        """The oldest run's next chunk: up to the end of that run, so a stream switch
        starts a new chunk."""
        while self._runs:
            run = self._runs[0]
            buffer = self.streams[run[0]]
            if buffer.closed or not buffer.pending or run[1] <= 0:
                self._runs.popleft()
                continue
            before = len(buffer.pending)
            chunk = buffer.cut(min(run[1], self.batch * 4), final=final)
            run[1] -= before - len(buffer.pending)
            if chunk is not None:
                return chunk
        return None

    async def _send(self, chunk: Chunk) -> bool:
        """One chunk to the dispatcher; False when it must be sent again later."""
        try:
            truncated = await self.sink.send(chunk)
        except StopSending:
            self.discard()
            return True
        except Exception as exc:  # unreachable, 5xx, 429: kept, sent again later
            if not self._failing:
                log.warning(
                    "output not delivered; kept to send again",
                    extra={"action": "output_deferred", "job_id": self.job_id, "error": repr(exc)},
                )
            self._failing = True
            return False
        self._failing = False
        if truncated:
            self.streams[chunk.stream].discard()
            self.spool.drop(chunk.stream)
        return True

    def _spill(self, buffer: StreamBuffer, final: bool = False) -> None:
        """Move ``buffer``'s memory to the spool, losing what passes its bound."""
        while buffer.pending:
            room = self.spool.room(buffer.name)
            if chunk := buffer.cut(self.batch * 4, room=room, final=final):
                self._push(chunk)
        if final and (chunk := buffer.closing_marker()):
            self._push(chunk)

    def _spill_all(self) -> None:
        for buffer in self.streams.values():
            if not buffer.closed:
                self._spill(buffer, final=True)

    def _push(self, chunk: Chunk, first: bool = False) -> None:
        try:
            self.spool.push(chunk, first=first)
        except OSError as exc:  # the disk is full or gone: this chunk is lost, and said so
            buffer = self.streams[chunk.stream]
            buffer.lost += len(chunk.data)
            buffer.dropped += len(chunk.data)
            log.error(
                "output lost: the spool refused it",
                extra={"action": "output_lost", "job_id": self.job_id, "error": str(exc)},
            )


class PipeReader:
    """Reads one non-blocking pipe fd from the event loop until EOF, handing chunks on."""

    def __init__(self, fd: int, on_data: Callable[[bytes], None]) -> None:
        self.fd = fd
        self.on_data = on_data
        self.eof: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.on_data(data)
        else:
            self.close()

    def close(self) -> None:
        """Stop reading and close the fd (EOF, or giving up on an escaped holder)."""
        if self.eof.done():
            return
        asyncio.get_running_loop().remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.eof.set_result(None)
