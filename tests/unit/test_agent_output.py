"""Output forwarding: batching, UTF-8 across batches, bounded memory, truncation, the spool."""

from __future__ import annotations

import asyncio
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.agent.binaries import BinaryCache
from corral.agent.executor import Execution, JobRun
from corral.agent.output import OutputForwarder, StopSending, StreamBuffer
from corral.agent.spool import Chunk, DiskQuota, Spool
from corral.agent.workdir import Executor
from corral.domain.jobs import JobSpec


class SlowSink:
    """A dispatcher slower than the job; answers truncated once ``cap`` bytes arrived.

    While ``down`` it refuses every chunk, like an unreachable dispatcher."""

    def __init__(self, delay: float = 0.0, cap: int | None = None) -> None:
        self.delay = delay
        self.cap = cap
        self.received = {"stdout": 0, "stderr": 0}
        self.calls = 0
        self.largest = 0
        self.chunks: list[Chunk] = []
        self.down = False

    async def send(self, chunk: Chunk) -> bool:
        self.calls += 1
        if self.down:
            raise ConnectionError("dispatcher down")
        self.largest = max(self.largest, len(chunk.data))
        await asyncio.sleep(self.delay)
        self.received[chunk.stream] += len(chunk.data)
        if len(self.chunks) < 1000:
            self.chunks.append(chunk)
        return self.cap is not None and self.received[chunk.stream] >= self.cap

    def text(self, stream: str = "stdout") -> str:
        return "".join(c.text for c in self.chunks if c.stream == stream)


@pytest.fixture
async def executor(tmp_path: Path) -> AsyncIterator[Executor]:
    async with httpx.AsyncClient() as http:
        executor = Executor(tmp_path / "work", BinaryCache(tmp_path / "bin", http), grace=0.5)
        yield executor
        executor.close()


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_stream_buffer_cuts_in_order_with_offsets() -> None:
    buffer = StreamBuffer(budget=10)
    buffer.feed(b"hello ")
    first = buffer.cut(100)
    buffer.feed("wörld".encode())
    second = buffer.cut(100)
    assert first is not None and second is not None
    assert (first.offset, first.text, second.offset, second.text) == (0, "hello ", 6, "wörld")


async def test_utf8_split_across_batches_is_kept() -> None:
    sink = SlowSink()
    forwarder = OutputForwarder(sink, batch=1)
    text = "héllo wörld ✓"
    for byte in text.encode():
        forwarder.feed("stdout", bytes([byte]))
        await asyncio.sleep(0)
    await forwarder.close()
    assert sink.text() == text


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

        async def send(self, chunk: Chunk) -> bool:
            self.calls += 1
            raise StopSending

    sink = Stale()
    forwarder = OutputForwarder(sink, interval=0.01)
    forwarder.feed("stdout", b"a")
    await asyncio.sleep(0.05)
    forwarder.feed("stdout", b"b")
    forwarder.feed("stderr", b"c")
    await forwarder.close()
    await forwarder.settle()
    assert sink.calls == 1


async def test_item6_output_kept_through_an_outage_and_sent_in_order(tmp_path: Path) -> None:
    """Sends fail for a while: nothing is lost, the resends keep the order, and what
    waited went to disk, not memory."""
    sink = SlowSink()
    forwarder = OutputForwarder(sink, interval=0.01, budget=64, spool_dir=tmp_path)
    forwarder.feed("stdout", b"one\n")
    await asyncio.sleep(0.05)
    sink.down = True
    for line in range(2, 200):
        forwarder.feed("stdout", f"line {line}\n".encode())
        forwarder.feed("stderr", f"err {line}\n".encode())
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert forwarder.spool.sizes["stdout"] > 0  # past the 64-byte budget: on disk
    assert all(len(b.pending) <= 64 for b in forwarder.streams.values())
    await forwarder.close()  # the job ended while the dispatcher is away: no waiting
    sink.down = False
    await forwarder.settle()
    expected = "one\n" + "".join(f"line {n}\n" for n in range(2, 200))
    assert sink.text() == expected
    assert sink.text("stderr") == "".join(f"err {n}\n" for n in range(2, 200))
    offsets = [c.offset for c in sink.chunks if c.stream == "stdout"]
    assert offsets == sorted(offsets)
    assert not any(c.truncated for c in sink.chunks)
    assert forwarder.dropped() == {"stdout": 0, "stderr": 0}


async def test_item6_past_the_spool_bound_the_loss_is_marked(tmp_path: Path) -> None:
    sink = SlowSink()
    forwarder = OutputForwarder(sink, interval=0.01, budget=16, spool_limit=100, spool_dir=tmp_path)
    sink.down = True
    for n in range(100):
        forwarder.feed("stdout", f"{n:09d}\n".encode())  # 1000 bytes, 100 fit
        await asyncio.sleep(0)
    await forwarder.close()
    sink.down = False
    await forwarder.settle()
    text = sink.text()
    assert text.startswith("000000000\n000000001\n")
    assert text.endswith("bytes of output lost while the dispatcher was unreachable or slow]\n")
    lost = forwarder.dropped()["stdout"]
    assert lost > 800 and f"[corral: {lost} bytes of output lost" in text
    assert sink.chunks[-1].truncated


def test_spool_keeps_order_and_gives_space_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit=10)
    spool.push(Chunk("stdout", 3, b"def"))
    spool.push(Chunk("stdout", 0, b"abc"), first=True)
    assert spool.room("stdout") == 4
    head = spool.peek()
    assert head == Chunk("stdout", 0, b"abc")
    spool.forget(head)
    assert spool.peek() == Chunk("stdout", 3, b"def")
    spool.forget(Chunk("stdout", 3, b"def"))
    assert len(spool) == 0 and spool.room("stdout") == 10
    assert list(tmp_path.iterdir()) == []  # the file was unlinked at once
    spool.close()


async def test_huge_output_with_slow_dispatcher_stays_bounded(executor: Executor) -> None:
    before = max_rss_mb()
    sink = SlowSink(delay=0.05)
    forwarder = OutputForwarder(sink, budget=256 * 1024, spool_limit=4 << 20)
    spec = JobSpec(command="head -c 400000000 /dev/zero")  # 400 MB, faster than the sink
    result = await Execution(executor, JobRun("big", 1, spec), forwarder).run()
    assert result.exit_code == 0
    assert forwarder.streams["stdout"].read == 400_000_000
    assert result.dropped > 300_000_000
    assert max_rss_mb() - before < 64
    assert sink.chunks[-1].truncated  # the stored output says it is not all there


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


def test_spools_of_one_worker_share_a_disk_quota(tmp_path: Path) -> None:
    quota = DiskQuota(10)
    first, second = Spool(tmp_path, 100, quota), Spool(tmp_path, 100, quota)
    first.push(Chunk("stdout", 0, b"12345678"))
    assert (second.room("stdout"), second.room("stderr")) == (2, 2)
    first.close()
    assert second.room("stdout") == 10 and quota.used == 0


async def test_item3_chunks_follow_the_order_streams_were_read_in() -> None:
    """Output read err, out, err within one send interval reaches the dispatcher in
    that order (the store keeps arrival order for `corral logs`), not stdout first."""
    sink = SlowSink()
    forwarder = OutputForwarder(sink, interval=0.05)
    for stream, data in (("stderr", b"e1\n"), ("stdout", b"o1\n"), ("stderr", b"e2\n")):
        forwarder.feed(stream, data)
    await forwarder.close()
    assert [(c.stream, c.data) for c in sink.chunks] == [
        ("stderr", b"e1\n"),
        ("stdout", b"o1\n"),
        ("stderr", b"e2\n"),
    ]
    assert [c.offset for c in sink.chunks] == [0, 0, 3]


async def test_item3_a_job_switching_streams_often_costs_boundedly_more_sends() -> None:
    sink = SlowSink()
    forwarder = OutputForwarder(sink, interval=0.05)
    for i in range(200):
        forwarder.feed("stdout" if i % 2 else "stderr", b"line\n")
    await forwarder.close()
    assert sink.text("stdout") + sink.text("stderr") == "line\n" * 200
    assert sink.calls <= 6  # at most MAX_RUNS in read order, then one per stream
