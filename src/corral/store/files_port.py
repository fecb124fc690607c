"""The files half of the storage port (``Store`` extends it): input archives and artifacts."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Protocol

from corral.domain.files import NewFile, StoredFile
from corral.domain.jobs import AttemptRef


class FileStore(Protocol):
    """What the file service needs of a store."""

    # --- files (input archives, artifacts) ------------------------------------------
    async def create_file(
        self,
        new: NewFile,
        pieces: AsyncIterable[bytes],
        max_size: int,
        fence: AttemptRef | None = None,
    ) -> StoredFile:
        """Store a stream in 1 MiB chunks, never whole in memory; ``TooLarge`` past
        ``max_size``. With ``fence`` it is an artifact of that attempt, replacing one at
        the same path, and only the attempt holding the lease may store it."""

    async def get_file(self, file_id: str) -> StoredFile | None:
        """A complete file's metadata; uploads still arriving are invisible."""

    def read_file(
        self, file_id: str, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[bytes]:
        """The file's bytes from ``start`` up to ``stop`` (exclusive; None: to the end),
        in pieces of at most a chunk, read from the chunk holding ``start`` on: a range
        near the end of a large file costs the chunks it spans, not the whole file."""

    async def list_artifacts(self, job_id: str) -> list[StoredFile]:
        """A job's artifacts, by attempt then path."""

    async def delete_expired_files(self, now: float) -> int:
        """Delete up to a few hundred files (and unfinished uploads) expired before ``now``."""

    async def owned_bytes(self, owner_id: str, now: float) -> int:
        """Bytes of the complete files (uploads and artifacts of their jobs) that
        ``owner_id`` owns and that have not expired at ``now``: what a quota counts."""
