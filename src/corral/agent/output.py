"""Forward a job's stdout/stderr to the dispatcher in batches, in bounded memory.

Pipes are read from the event loop in 64 KiB chunks, never by line, so a 100 MB
line without a newline costs no more than any other output. Each stream keeps
at most ``budget`` bytes waiting to be sent: when the dispatcher is slower than
the job, the excess is dropped and counted instead of piling up. Once the
dispatcher answers ``truncated: true`` (it stores at most 1 MiB per stream),
nothing more is sent for that stream and the pipe is merely drained, so the job
never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Protocol

from corral.agent.process import READ_SIZE

log = logging.getLogger("corral.agent.output")

STREAMS = ("stdout", "stderr")


class OutputSink(Protocol):
    """Where batches go; answers whether the dispatcher truncated the stream."""

    async def send(self, stream: str, data: str) -> bool: ...


class StopSending(Exception):
    """Raised by a sink when no more output may be sent (the attempt lost its lease)."""


class StreamBuffer:
    """Bytes of one stream waiting to be sent, capped at ``budget``."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.pending = bytearray()
        self.dropped = 0
        self.read = 0
        self.sent = 0
        self.closed = False  # the dispatcher truncated the stream, or sending stopped
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes) -> None:
        self.read += len(data)
        if self.closed:
            return
        room = self.budget - len(self.pending)
        if room < len(data):
            self.dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self.pending += data

    def take(self, limit: int, final: bool) -> str:
        """Remove up to ``limit`` bytes and decode them; UTF-8 sequences split across
        batches are carried over by the incremental decoder."""
        chunk = bytes(self.pending[:limit])
        del self.pending[:limit]
        self.sent += len(chunk)
        return self._decoder.decode(chunk, final=final and not self.pending)


class OutputForwarder:
    """Collects one job's output and sends it through ``sink`` every ``interval`` or
    ``batch`` bytes, from a single sender task that exists only while there is output."""

    def __init__(
        self,
        sink: OutputSink,
        *,
        interval: float = 0.1,
        batch: int = 64 * 1024,
        budget: int = 1 << 20,
        job_id: str = "",
    ) -> None:
        self.sink = sink
        self.interval = interval
        self.batch = batch
        self.job_id = job_id
        self.streams = {name: StreamBuffer(budget) for name in STREAMS}
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._sender: asyncio.Task[None] | None = None
        self._closing = False

    def feed(self, stream: str, data: bytes) -> None:
        buffer = self.streams[stream]
        buffer.feed(data)
        if buffer.closed or not buffer.pending:
            return
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        if len(buffer.pending) >= self.batch:
            self._wake.set()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._wake.set)

    async def close(self) -> None:
        """Send what is left, then stop the sender. Called once the pipes hit EOF."""
        self._closing = True
        if self._sender is None:
            return
        self._wake.set()
        await self._sender

    def dropped(self) -> dict[str, int]:
        return {name: buffer.dropped for name, buffer in self.streams.items()}

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._timer = None
            await self._flush()
            if self._closing:
                await self._flush()
                return

    async def _flush(self) -> None:
        for name, buffer in self.streams.items():
            while buffer.pending and not buffer.closed:
                data = buffer.take(self.batch * 4, final=self._closing)
                await self._send(name, buffer, data)

    async def _send(self, name: str, buffer: StreamBuffer, data: str) -> None:
        try:
            truncated = await self.sink.send(name, data)
        except StopSending:
            for stream in self.streams.values():
                stream.closed = True
                stream.pending.clear()
            return
        except Exception as exc:  # the dispatcher is unreachable: this batch is lost
            buffer.dropped += len(data)
            log.warning(
                "output batch dropped",
                extra={
                    "action": "output_dropped",
                    "job_id": self.job_id,
                    "stream": name,
                    "error": repr(exc),
                },
            )
            return
        if truncated:
            buffer.closed = True
            buffer.pending.clear()


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
