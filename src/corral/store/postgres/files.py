"""Stored files on PostgreSQL: chunk by chunk, a pooled connection held only per chunk.

Finishing an artifact locks its job row first (``FOR UPDATE`` in
``fenced_job``), then touches ``files`` rows: job rows before anything else,
the adapter's one lock order.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from corral.domain.files import NewFile, StoredFile
from corral.domain.jobs import AttemptRef
from corral.store.files_common import (
    FILE_COLUMNS,
    FileStoreMixin,
    file_from_row,
    provisional_params,
)
from corral.store.postgres import sql as q

_BEGIN = (
    "INSERT INTO files (id, owner_id, filename, content_type, created_at, expires_at, "
    "job_id, attempt, path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)
_REPLACED = "SELECT id FROM files WHERE job_id = $1 AND attempt = $2 AND path = $3 AND id != $4"
_DELETE_CHUNKS = "DELETE FROM file_chunks WHERE file_id = ANY($1::text[])"
_DELETE_FILES = "DELETE FROM files WHERE id = ANY($1::text[])"
_OWNED = (
    "SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = $1 AND expires_at >= $2 "
    "AND sha256 != ''"
)
_EXPIRED = "SELECT id FROM files WHERE expires_at < $1 LIMIT 500"


class PostgresFiles(FileStoreMixin):
    """The file half of ``PostgresStore``."""

    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    def _tx(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def _file_begin(self, new: NewFile, fence: AttemptRef | None) -> None:
        async with self._conn() as conn:
            if fence is not None and new.job_id is not None:
                await q.fenced_job(conn, new.job_id, fence)
            await conn.execute(_BEGIN, *provisional_params(new))

    async def _file_put_chunk(self, file_id: str, seq: int, data: bytes) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)",
                file_id,
                seq,
                data,
            )

    async def _file_finish(
        self, new: NewFile, size: int, sha256: str, fence: AttemptRef | None
    ) -> None:
        async with self._tx() as conn:
            if fence is not None and new.job_id is not None:
                await q.fenced_job(conn, new.job_id, fence)
                rows = await conn.fetch(_REPLACED, new.job_id, new.attempt, new.path, new.id)
                replaced = [r[0] for r in rows]
                if replaced:
                    await conn.execute(_DELETE_CHUNKS, replaced)
                    await conn.execute(_DELETE_FILES, replaced)
            await conn.execute(
                "UPDATE files SET size = $1, sha256 = $2, expires_at = $3 WHERE id = $4",
                size,
                sha256,
                new.expires_at,
                new.id,
            )

    async def _file_discard(self, file_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(_DELETE_CHUNKS, [file_id])
            await conn.execute(_DELETE_FILES, [file_id])

    async def get_file(self, file_id: str) -> StoredFile | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = $1 AND sha256 != ''", file_id
            )
        return file_from_row(row) if row else None

    async def _file_chunks(self, file_id: str, first_seq: int) -> AsyncIterator[bytes]:
        """Chunk by chunk, one query each: no connection is held while the client reads."""
        seq = first_seq
        while True:
            async with self._conn() as conn:
                data = await conn.fetchval(
                    "SELECT data FROM file_chunks WHERE file_id = $1 AND seq = $2", file_id, seq
                )
            if data is None:
                return
            yield bytes(data)
            seq += 1

    async def list_artifacts(self, job_id: str) -> list[StoredFile]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {FILE_COLUMNS} FROM files WHERE job_id = $1 AND sha256 != '' "
                "ORDER BY attempt, path",
                job_id,
            )
        return [file_from_row(r) for r in rows]

    async def delete_expired_files(self, now: float) -> int:
        async with self._tx() as conn:
            ids = [r[0] for r in await conn.fetch(_EXPIRED, now)]
            if ids:
                await conn.execute(_DELETE_CHUNKS, ids)
                await conn.execute(_DELETE_FILES, ids)
        return len(ids)

    async def owned_bytes(self, owner_id: str, now: float) -> int:
        async with self._conn() as conn:
            total = await conn.fetchval(_OWNED, owner_id, now)
        return int(total)
