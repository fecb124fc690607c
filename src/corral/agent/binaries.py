"""``binary_url`` downloads: streamed to disk, verified by sha256, cached by hash.

A binary is only ever executed from ``<cache>/<sha256>``, and a file only gets
that name after its content hashed to it, so a tampered or truncated download
can never run. The cache belongs to the worker (directory 0755, entries 0555,
neither writable by a job's uid), and a cached entry is hashed again before
every run: one that no longer matches its name (planted or altered by someone
who could write there) is thrown away and downloaded again, never run.
Concurrent jobs wanting the same hash share one download. Only http(s) is
fetched, and the worker gives this cache a client that refuses private addresses
unless the operator allowed them (``netguard.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from pathlib import Path

import httpx

from corral.agent.netguard import AddressRefused

log = logging.getLogger("corral.agent.binaries")

CHUNK = 256 * 1024


class BinaryError(Exception):
    """The binary could not be obtained; ``retryable`` says whether another try may help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class BinaryCache:
    """Fetches binaries into ``directory``; ``max_bytes`` bounds one download."""

    def __init__(self, directory: Path, http: httpx.AsyncClient, max_bytes: int = 1 << 30) -> None:
        self.directory = directory
        self.http = http
        self.max_bytes = max_bytes
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, url: str, sha256: str) -> Path:
        """Return the path of a verified executable copy of ``url``."""
        if not url.startswith(("http://", "https://")):
            raise BinaryError("binary_url must be an http(s) URL; nothing was run", retryable=False)
        digest = sha256.lower()
        target = self.directory / digest
        lock = self._locks.setdefault(digest, asyncio.Lock())
        async with lock:
            if not await asyncio.to_thread(_still_valid, target, digest):
                await self._download(url, digest, target)
        self._locks.pop(digest, None)
        return target

    async def _download(self, url: str, digest: str, target: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)
        partial = target.with_name(f".{digest}.{os.getpid()}.part")
        try:
            actual = await self._stream_to(url, partial)
            if actual != digest:
                raise BinaryError(
                    f"binary sha256 mismatch: expected {digest}, downloaded {actual}; "
                    "nothing was run",
                    retryable=False,
                )
            partial.chmod(0o555)
            partial.replace(target)
            log.info("binary cached", extra={"action": "binary_cached", "sha256": digest})
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    async def _stream_to(self, url: str, path: Path) -> str:
        hasher = hashlib.sha256()
        size = 0
        try:
            async with self.http.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    raise BinaryError(
                        f"binary download failed: HTTP {response.status_code} from {url}",
                        retryable=response.status_code >= 500 or response.status_code == 429,
                    )
                with path.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise BinaryError(
                                f"binary larger than {self.max_bytes} bytes", retryable=False
                            )
                        hasher.update(chunk)
                        out.write(chunk)
        except AddressRefused as exc:  # the same answer on every worker: do not retry
            raise BinaryError(f"{exc.message}; nothing was run", retryable=False) from exc
        except httpx.HTTPError as exc:
            raise BinaryError(f"binary download failed: {exc!r}", retryable=True) from exc
        return hasher.hexdigest()


def _still_valid(target: Path, digest: str) -> bool:
    """Whether the cached ``target`` exists and still hashes to its name; a mismatch
    (a planted or altered entry) is removed and logged, so it is fetched again."""
    hasher = hashlib.sha256()
    try:
        with target.open("rb") as cached:
            while chunk := cached.read(CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        return False
    if hasher.hexdigest() == digest:
        return True
    log.warning(
        "cached binary does not match its sha256; discarded",
        extra={"action": "binary_cache_poisoned", "sha256": digest, "actual": hasher.hexdigest()},
    )
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    return False
