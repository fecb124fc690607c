"""``download_file`` and ``download_artifact`` of every SDK client: the whole file or none.

The body goes to ``DEST.part`` beside ``dest`` and is held to the answer's
``Content-Length`` and ``X-Content-SHA256`` as it arrives; only a complete,
matching body replaces ``dest``. A body cut off (its replica died, or lost its
database while streaming) is asked for again on the replica in use
(``corral.failover`` moves on from one that refuses) from its first byte: the
API serves no byte ranges. Once ``RetryWindow`` is over (it starts afresh each
time a try gets further than any before), the part file is removed and
``CorralConnectionError`` raised; an error answer (404...) raises its typed
error, likewise leaving nothing behind.

A ``dest`` that exists and is no regular file (``/dev/stdout``, a pipe) is
written in place: it cannot be replaced, nor removed on failure, nor written
again from the start, so a try cut off after it wrote there is the last.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import BinaryIO

import httpx

from corral.client.errors import error_for, unreachable
from corral.client.window import RetryWindow

PIECE = 1 << 20


class Incomplete(Exception):
    """The body that arrived is not the one the answer's headers announced."""


class Received:
    """What one try received of a body, against what its answer announced."""

    def __init__(self) -> None:
        self.size: int | None = None
        self.sha256: str | None = None
        self.count = 0
        self._hash = hashlib.sha256()

    def expect(self, response: httpx.Response) -> None:
        length = response.headers.get("content-length", "")
        self.size = int(length) if length.isascii() and length.isdigit() else None
        self.sha256 = response.headers.get("x-content-sha256")

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
    part = staging(dest)
    tries = Tries(retry_for, rewinds=part != dest)
    try:
        while True:
            received, failure = _fetch(http, url, path, part)
            if failure is None:
                keep(part, dest)
                return dest
            pause = tries.pause(received)
            if pause is None:
                raise unreachable(url, failure) from failure
            time.sleep(pause)
    finally:
        discard(part, dest)


def _fetch(
    http: httpx.Client, url: str, path: str, part: Path
) -> tuple[Received, Exception | None]:
    """One try: what it received, and why it fell short (None: it did not)."""
    received = Received()
    try:
        with http.stream("GET", path) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            received.expect(response)
            with part.open("wb") as out:
                for piece in response.iter_bytes(PIECE):
                    received.write(out, piece)
            received.check(response)
    except (httpx.TransportError, Incomplete) as exc:
        return received, exc
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return received, None


async def adownload(
    http: httpx.AsyncClient, url: str, path: str, dest: Path, retry_for: float
) -> Path:
    """``download`` for ``httpx.AsyncClient``; the disk is written off the event loop."""
    part = staging(dest)
    tries = Tries(retry_for, rewinds=part != dest)
    try:
        while True:
            received, failure = await _afetch(http, url, path, part)
            if failure is None:
                await asyncio.to_thread(keep, part, dest)
                return dest
            pause = tries.pause(received)
            if pause is None:
                raise unreachable(url, failure) from failure
            await asyncio.sleep(pause)
    finally:
        discard(part, dest)


async def _afetch(
    http: httpx.AsyncClient, url: str, path: str, part: Path
) -> tuple[Received, Exception | None]:
    received = Received()
    try:
        async with http.stream("GET", path) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_for(response)
            received.expect(response)
            out = await asyncio.to_thread(part.open, "wb")
            try:
                async for piece in response.aiter_bytes(PIECE):
                    await asyncio.to_thread(received.write, out, piece)
            finally:
                out.close()
            received.check(response)
    except (httpx.TransportError, Incomplete) as exc:
        return received, exc
    except httpx.HTTPError as exc:
        raise unreachable(url, exc) from exc
    return received, None


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
