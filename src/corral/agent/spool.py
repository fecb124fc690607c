"""A job's output that could not be sent yet, kept on disk in order, within a bound.

When the dispatcher is away (restarting, unreachable, answering 5xx) or slower
than the job, output must neither pile up in memory nor be lost: it is written
here and sent, oldest first, once the dispatcher answers again. Records go to an
anonymous file (unlinked as soon as it is made, so nothing is left behind however
the worker ends) in the worker's spool directory; only their index is in memory.
Each stream may hold at most ``limit`` bytes, and all the spools of one worker
together at most their shared ``DiskQuota``; the forwarder decides what to do
with what does not fit (it is lost, and the stored output says so).
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

STREAMS = ("stdout", "stderr")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of one stream as the dispatcher receives it."""

    stream: str
    offset: int  # where ``data`` starts in the stream, in UTF-8 bytes
    data: bytes  # UTF-8 text
    truncated: bool = False  # output was lost before this chunk (it starts with a marker)

    @property
    def text(self) -> str:
        return self.data.decode()


class DiskQuota:
    """Bytes the spools of one worker may hold together, so a fleet of chatty jobs
    during a long outage cannot fill the disk."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def free(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True, slots=True)
class _Record:
    stream: str
    offset: int
    position: int  # where the data sits in the file
    length: int
    truncated: bool


class Spool:
    """Chunks waiting to be sent, oldest first, data on disk."""

    def __init__(self, directory: Path | None, limit: int, quota: DiskQuota | None = None) -> None:
        self.directory = directory
        self.limit = limit
        self.quota = quota or DiskQuota(1 << 62)
        self.sizes = dict.fromkeys(STREAMS, 0)
        self._records: deque[_Record] = deque()
        self._fd = -1
        self._end = 0

    def __len__(self) -> int:
        return len(self._records)

    def room(self, stream: str) -> int:
        """Bytes ``stream`` may still put here."""
        return min(max(0, self.limit - self.sizes[stream]), self.quota.free())

    def push(self, chunk: Chunk, *, first: bool = False) -> None:
        """Keep ``chunk``: last in line, or ``first`` (a chunk whose send just failed is
        older than anything spooled meanwhile). Raises OSError when the disk refuses."""
        fd = self._open()
        written = 0
        while written < len(chunk.data):
            written += os.pwrite(fd, chunk.data[written:], self._end + written)
        record = _Record(chunk.stream, chunk.offset, self._end, written, chunk.truncated)
        self._end += written
        if first:
            self._records.appendleft(record)
        else:
            self._records.append(record)
        self._count(chunk.stream, written)

    def peek(self) -> Chunk | None:
        """The oldest chunk, read back from disk; it stays until ``forget``."""
        if not self._records:
            return None
        record = self._records[0]
        data = bytearray()
        while len(data) < record.length:
            piece = os.pread(self._fd, record.length - len(data), record.position + len(data))
            if not piece:
                raise OSError("the spool file is shorter than its index")
            data += piece
        return Chunk(record.stream, record.offset, bytes(data), record.truncated)

    def forget(self, chunk: Chunk) -> None:
        """Forget the oldest chunk if it is ``chunk`` (delivered, or of a stream that is
        closed); an empty spool gives its disk space back."""
        if not self._records:
            return
        record = self._records[0]
        if (record.stream, record.offset) != (chunk.stream, chunk.offset):
            return
        self._records.popleft()
        self._count(record.stream, -record.length)
        if not self._records:
            os.ftruncate(self._fd, 0)
            self._end = 0

    def drop(self, stream: str) -> None:
        """Forget every chunk of ``stream`` (the dispatcher stores no more of it)."""
        self._records = deque(r for r in self._records if r.stream != stream)
        self._count(stream, -self.sizes[stream])

    def close(self) -> None:
        """Forget everything and free the file."""
        self._records.clear()
        for stream in STREAMS:
            self._count(stream, -self.sizes[stream])
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._end = 0

    def _count(self, stream: str, change: int) -> None:
        self.sizes[stream] += change
        self.quota.used += change

    def _open(self) -> int:
        if self._fd < 0:
            if self.directory is not None:
                self.directory.mkdir(parents=True, exist_ok=True)
            self._fd, path = tempfile.mkstemp(prefix="output-", dir=self.directory)
            os.unlink(path)
        return self._fd
