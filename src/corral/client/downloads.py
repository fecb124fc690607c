"""``download_file`` and ``download_artifact`` of every SDK client: the whole file or none.

The body goes to ``DEST.part`` beside ``dest`` and is held to the answer's
``Content-Length`` and ``X-Content-SHA256`` as it arrives; only a complete,
matching body replaces ``dest``. A body cut off (its replica died, or lost its
database while streaming) is asked for again on the replica in use
(``corral.failover`` moves on from one that refuses), from where the part file
ends: ``Range: bytes=N-`` with ``If-Range`` naming the version (``ETag``) whose
first N bytes it holds. A 206 starting at N is appended, and the digest check
still covers the whole file, since the part's bytes are hashed first. Any other
answer starts the file over from its first byte: a 200 (the file changed, or
the server ignores ranges) is written from the start, and a 416 or a range that
does not start at N is asked for again whole. Once ``RetryWindow`` is over (it
starts afresh each time a try gets further than any before), the part file is
removed and ``CorralConnectionError`` raised; an error answer (404...) raises
its typed error, likewise leaving nothing behind.

A ``dest`` that exists and is no regular file (``/dev/stdout``, a pipe) is
written in place: it cannot be replaced, nor removed on failure, nor written
again from the start, nor read back to resume from, so a try cut off after it
wrote there is the last.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from pathlib import Path
from typing import BinaryIO

import httpx

from corral.client.errors import error_for, unreachable
from corral.client.window import RetryWindow

PIECE = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")


class Incomplete(Exception):
    """The body that arrived is not the one the answer's headers announced."""


class Part:
    """The part file between tries: how much of which version of the file it holds."""

    def __init__(self, path: Path, *, resumable: bool) -> None:
        self.path = path
        self.resumable = resumable  # False: dest itself, which cannot be read back
        self.etag: str | None = None  # of the answer whose bytes the part file holds
        self.held = 0  # bytes the next try asks to skip

    def ask(self) -> dict[str, str]:
        """The next try's headers: a range from where the part file ends, if it can.

        Blocking (a stat): the async client runs it in a thread.
        """
        self.held = 0
        if self.resumable and self.etag is not None and self.path.is_file():
            self.held = self.path.stat().st_size
        if not self.held:
            return {}
        return {"Range": f"bytes={self.held}-", "If-Range": self.etag or ""}

    def answered(self, response: httpx.Response) -> bool:
        """Whether ``response`` can be used: False for a refused range (416, or a part
        that does not start at ``held``), after which the file is asked for whole.
        Sets ``held`` to 0 unless the answer goes on from the part file."""
        if self.held and response.status_code == 206:
            start = _range_start(response.headers.get("content-range", ""))
            if start == self.held:
                return True
        if self.held and response.status_code in (206, 416):
            self.etag, self.held = None, 0
            return False
        self.held = 0
        if response.status_code < 300:
            etag = response.headers.get("etag", "")
            self.etag = etag if etag.startswith('"') else None  # If-Range takes strong tags
        return True


def _range_start(content_range: str) -> int | None:
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    return int(match.group(1)) if match else None


class Received:
    """What one try received of a body, against what its answer announced."""

    def __init__(self) -> None:
        self.size: int | None = None
        self.sha256: str | None = None
        self.count = 0  # bytes of the file in the part file: kept ones and new ones
        self._hash = hashlib.sha256()

    def expect(self, response: httpx.Response) -> None:
        length = response.headers.get("content-length", "")
        self.size = int(length) if length.isascii() and length.isdigit() else None
        self.sha256 = response.headers.get("x-content-sha256")

    def resume(self, part: Part) -> BinaryIO:
        """The part file opened to go on with: its ``held`` first bytes are kept, and
        hashed so the digest check covers the whole file; without any, it is emptied.

        Blocking (disk reads): the async client runs it in a thread.
        """
        if not part.held:
            return part.path.open("wb")
        out = part.path.open("r+b")
        while self.count < part.held:
            piece = out.read(min(PIECE, part.held - self.count))
            if not piece:
                raise Incomplete("the part file shrank while it was being resumed")
            self._hash.update(piece)
            self.count += len(piece)
        out.truncate()  # anything past ``held`` (there is nothing, unless it grew)
        return out

    def write(self, out: BinaryIO, piece: bytes) -> None:
        """Blocking (a disk write): the async client runs it in a thread."""
        out.write(piece)
        self._hash.update(piece)
        self.count += len(piece)

    def check(self, response: httpx.Response) -> None:
        """Raise ``Incomplete`` unless the whole announced body arrived.

        ``Content-Length`` counts the bytes on the wire (``num_bytes_downloaded``),
        which an encoded body would not share with the file.
        """
        wire = response.num_bytes_downloaded
        if self.size is not None and wire != self.size:
            raise Incomplete(f"the download was cut off at {wire} of {self.size} bytes")
        if self.sha256 and self._hash.hexdigest() != self.sha256.lower():
            raise Incomplete("the download does not match its X-Content-SHA256")


class Tries:
    """The tries of one download: how far the best one got, and when to give up."""

    def __init__(self, retry_for: float, *, rewinds: bool) -> None:
        self.window = RetryWindow(retry_for)
        self.rewinds = rewinds  # False: what a try wrote cannot be written over
        self.best = 0

    def pause(self, received: Received) -> float | None:
        """Seconds before the next try after ``received``, or None: give up."""
        if received.count and not self.rewinds:
            return None
        if received.count > self.best:
            self.best = received.count
            self.window.progressed()
        return self.window.pause()


def download(http: httpx.Client, url: str, path: str, dest: Path, retry_for: float) -> Path:
    part = Part(staging(dest), resumable=staging(dest) != dest)
    tries = Tries(retry_for, rewinds=part.resumable)
    try:
        while True:
            received, failure = _fetch(http, url, path, part)
            if failure is None:
                keep(part.path, dest)
                return dest
            pause = tries.pause(received)
            if pause is None:
                raise unreachable(url, failure) from failure
            time.sleep(pause)
    finally:
        discard(part.path, dest)


def _fetch(
    http: httpx.Client, url: str, path: str, part: Part
) -> tuple[Received, Exception | None]:
    """One try: what it received, and why it fell short (None: it did not)."""
    received = Received()
    try:
        while True:  # at most twice: a refused range is asked for again whole
            with http.stream("GET", path, headers=part.ask()) as response:
                if not part.answered(response):
                    continue
                if response.status_code >= 400:
                    response.read()
                    raise error_for(response)
                received.expect(response)
                with received.resume(part) as out:
                    for piece in response.iter_bytes():  # as it arrives: a cut keeps it all
                        received.write(out, piece)
                received.check(response)
                return received, None
    except (httpx.TransportError, Incomplete) as exc:
        return received, exc
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc


async def adownload(
    http: httpx.AsyncClient, url: str, path: str, dest: Path, retry_for: float
) -> Path:
    """``download`` for ``httpx.AsyncClient``; the disk is used off the event loop."""
    part = Part(staging(dest), resumable=staging(dest) != dest)
    tries = Tries(retry_for, rewinds=part.resumable)
    try:
        while True:
            received, failure = await _afetch(http, url, path, part)
            if failure is None:
                await asyncio.to_thread(keep, part.path, dest)
                return dest
            pause = tries.pause(received)
            if pause is None:
                raise unreachable(url, failure) from failure
            await asyncio.sleep(pause)
    finally:
        discard(part.path, dest)


async def _afetch(
    http: httpx.AsyncClient, url: str, path: str, part: Part
) -> tuple[Received, Exception | None]:
    received = Received()
    try:
        while True:  # at most twice: a refused range is asked for again whole
            asked = await asyncio.to_thread(part.ask)
            async with http.stream("GET", path, headers=asked) as response:
                if not part.answered(response):
                    continue
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for(response)
                received.expect(response)
                out = await asyncio.to_thread(received.resume, part)
                pending = bytearray()  # one disk write (and thread hop) per PIECE
                try:
                    async for piece in response.aiter_bytes():
                        pending += piece
                        if len(pending) >= PIECE:
                            await asyncio.to_thread(received.write, out, bytes(pending))
                            pending.clear()
                finally:  # what arrived before a cut is kept, to go on from
                    if pending:
                        await asyncio.to_thread(received.write, out, bytes(pending))
                    out.close()
                received.check(response)
                return received, None
    except (httpx.TransportError, Incomplete) as exc:
        return received, exc
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc


def staging(dest: Path) -> Path:
    """Where the bytes go until they are complete."""
    if dest.exists() and not dest.is_file():
        return dest
    return dest.with_name(dest.name + ".part")


def keep(part: Path, dest: Path) -> None:
    if part != dest:
        os.replace(part, dest)


def discard(part: Path, dest: Path) -> None:
    """Remove what a download left unfinished (nothing once ``keep`` moved it)."""
    if part != dest:
        part.unlink(missing_ok=True)
