"""Output forwarding: batching, UTF-8 across batches, bounded memory, truncation."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.executor import Execution, Executor, JobRun
from corral.agent.output import OutputForwarder, StopSending, StreamBuffer
from corral.domain.jobs import JobSpec


class SlowSink:
    """A dispatcher slower than the job; answers truncated once ``cap`` bytes arrived."""

    def __init__(self, delay: float = 0.0, cap: int | None = None) -> None:
        self.delay = delay
        self.cap = cap
        self.received = {"stdout": 0, "stderr": 0}
        self.calls = 0
        self.largest = 0
        self.chunks: list[str] = []

    async def send(self, stream: str, data: str) -> bool:
        self.calls += 1
        self.largest = max(self.largest, len(data))
        await asyncio.sleep(self.delay)
        self.received[stream] += len(data.encode())
        if len(self.chunks) < 1000:
            self.chunks.append(data)
        return self.cap is not None and self.received[stream] >= self.cap


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http), grace=0.5)
        yield executor
        executor.close()


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_stream_buffer_drops_beyond_budget() -> None:
    buffer = StreamBuffer(budget=10)
    buffer.feed(b"0123456789abc")
    assert bytes(buffer.pending) == b"0123456789"
    assert buffer.dropped == 3
    assert buffer.read == 13


async def test_utf8_split_across_batches_is_kept() -> None:
    sink = SlowSink()
    forwarder = OutputForwarder(sink, batch=1)
    text = "héllo wörld ✓"
    for byte in text.encode():
        forwarder.feed("stdout", bytes([byte]))
        await asyncio.sleep(0)
    await forwarder.close()
    assert "".join(sink.chunks) == text


async def test_batches_by_time() -> None:
    sink = SlowSink()
    forwarder = OutputForwarder(sink, interval=0.05)
    for _ in range(20):
        forwarder.feed("stdout", b"x")
    await asyncio.sleep(0.2)
    assert sink.calls == 1  # twenty small writes, one request
    await forwarder.close()


async def test_stop_sending_closes_every_stream() -> None:
    class Stale:
        calls = 0

        async def send(self, stream: str, data: str) -> bool:
            self.calls += 1
            raise StopSending

    sink = Stale()
    forwarder = OutputForwarder(sink, interval=0.01)
    forwarder.feed("stdout", b"a")
    await asyncio.sleep(0.05)
    forwarder.feed("stdout", b"b")
    forwarder.feed("stderr", b"c")
    await forwarder.close()
    assert sink.calls == 1


async def test_huge_output_with_slow_dispatcher_stays_bounded(executor: Executor) -> None:
    before = max_rss_mb()
    sink = SlowSink(delay=0.05)
    forwarder = OutputForwarder(sink, budget=256 * 1024)
    spec = JobSpec(command="head -c 400000000 /dev/zero")  # 400 MB, faster than the sink
    result = await Execution(executor, JobRun("big", 1, spec), forwarder).run()
    assert result.exit_code == 0
    assert forwarder.streams["stdout"].read == 400_000_000
    assert result.dropped > 300_000_000
    assert max_rss_mb() - before < 64


async def test_one_long_line_without_newline(executor: Executor) -> None:
    before = max_rss_mb()
    sink = SlowSink(cap=1 << 20)  # like the dispatcher: truncated after 1 MiB
    forwarder = OutputForwarder(sink)
    spec = JobSpec(command="head -c 100000000 /dev/zero | tr '\\0' a")
    result = await Execution(executor, JobRun("line", 1, spec), forwarder).run()
    assert result.exit_code == 0
    assert forwarder.streams["stdout"].read == 100_000_000
    assert forwarder.streams["stdout"].closed
    assert (1 << 20) <= sink.received["stdout"] < (1 << 20) + 4 * 64 * 1024 + 1
    assert max_rss_mb() - before < 64
