"""What both adapters share for stored files: the upload flow, chunking, rows.

An upload arrives as an async stream of byte pieces of any size. It is cut into
``CHUNK_SIZE`` chunks, each written in its own short transaction, so neither
the dispatcher's memory nor a database transaction ever holds the whole file,
and a slow client never pins a connection. The ``files`` row is inserted first
as a provisional record (empty ``sha256``, a short ``expires_at``) and made
final in one transaction at the end; readers never see an unfinished file, and
one whose uploader died is swept like any expired file.

Every chunk but a file's last holds exactly ``CHUNK_SIZE`` bytes (``Chunker``
re-cuts whatever arrives), so the chunk holding byte ``n`` is number
``n // CHUNK_SIZE``: a read from the middle of a file starts at that chunk and
never touches the ones before it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from corral.domain.files import CHUNK_SIZE, NewFile, StoredFile
from corral.domain.jobs import AttemptRef
from corral.errors import TooLarge

# How long a provisional upload row lives before the sweeper may remove it.
UPLOAD_WINDOW = 24 * 3600.0
FILE_COLUMNS = (
    "id, owner_id, filename, size, sha256, content_type, created_at, expires_at, "
    "job_id, attempt, path"
)


def file_from_row(row: Any) -> StoredFile:
    return StoredFile(
        id=row["id"],
        owner_id=row["owner_id"],
        filename=row["filename"],
        size=int(row["size"]),
        sha256=row["sha256"],
        content_type=row["content_type"],
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        job_id=row["job_id"],
        attempt=row["attempt"],
        path=row["path"],
    )


def provisional_params(new: NewFile) -> tuple[Any, ...]:
    """The row of an upload still arriving: no digest yet, a short lifetime."""
    return (
        new.id,
        new.owner_id,
        new.filename,
        new.content_type,
        new.created_at,
        new.created_at + UPLOAD_WINDOW,
        new.job_id,
        new.attempt,
        new.path,
    )


class Chunker:
    """Re-cuts a stream into ``CHUNK_SIZE`` chunks, hashing and counting as it goes.

    The size limit is enforced on the bytes that actually arrive, before the
    piece that crosses it is stored.
    """

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self._digest = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    async def chunks(self, pieces: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        buffer = bytearray()
        async for piece in pieces:
            self.size += len(piece)
            if self.size > self.max_size:
                raise TooLarge(
                    f"the upload exceeds the limit of {self.max_size} bytes",
                    limit=self.max_size,
                )
            self._digest.update(piece)
            buffer += piece
            while len(buffer) >= CHUNK_SIZE:
                yield bytes(buffer[:CHUNK_SIZE])
                del buffer[:CHUNK_SIZE]
        if buffer:
            yield bytes(buffer)


class FileStoreMixin:
    """The upload flow over four primitives each adapter implements."""

    async def _file_begin(self, new: NewFile, fence: AttemptRef | None) -> None:
        raise NotImplementedError

    async def _file_put_chunk(self, file_id: str, seq: int, data: bytes) -> None:
        raise NotImplementedError

    async def _file_finish(
        self, new: NewFile, size: int, sha256: str, fence: AttemptRef | None
    ) -> None:
        raise NotImplementedError

    async def _file_discard(self, file_id: str) -> None:
        raise NotImplementedError

    def _file_chunks(self, file_id: str, first_seq: int) -> AsyncIterator[bytes]:
        """The stored chunks from number ``first_seq`` on, one read each."""
        raise NotImplementedError

    async def read_file(
        self, file_id: str, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[bytes]:
        """Bytes ``start`` up to ``stop`` (exclusive; None: the end), one chunk in memory
        at a time: the first chunk read is the one holding ``start``, sliced, and the
        reads stop with the chunk holding ``stop - 1``."""
        seq, skip = divmod(start, CHUNK_SIZE)
        offset = seq * CHUNK_SIZE  # where the next chunk begins in the file
        async for data in self._file_chunks(file_id, seq):
            end = len(data) if stop is None else min(len(data), stop - offset)
            if end > skip:
                yield data[skip:end] if skip or end < len(data) else data
            offset += len(data)
            skip = 0
            if stop is not None and offset >= stop:
                return

    async def create_file(
        self,
        new: NewFile,
        pieces: AsyncIterable[bytes],
        max_size: int,
        fence: AttemptRef | None = None,
    ) -> StoredFile:
        """Store a stream as a new file; with ``fence``, as an artifact of that attempt.

        The fence is checked before the first byte and again in the transaction
        that makes the file visible, so an attempt that lost its lease meanwhile
        leaves nothing behind. Raises ``TooLarge`` past ``max_size`` bytes.
        """
        await self._file_begin(new, fence)
        chunker = Chunker(max_size)
        try:
            seq = 0
            async for chunk in chunker.chunks(pieces):
                await self._file_put_chunk(new.id, seq, chunk)
                seq += 1
            await self._file_finish(new, chunker.size, chunker.sha256, fence)
        except BaseException:
            await asyncio.shield(self._file_discard(new.id))
            raise
        return StoredFile(
            id=new.id,
            owner_id=new.owner_id,
            filename=new.filename,
            size=chunker.size,
            sha256=chunker.sha256,
            content_type=new.content_type,
            created_at=new.created_at,
            expires_at=new.expires_at,
            job_id=new.job_id,
            attempt=new.attempt,
            path=new.path,
        )
