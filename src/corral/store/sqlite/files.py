"""Stored files on SQLite: each chunk its own short write, so uploads never hold the writer."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from functools import partial

from corral.domain.files import NewFile, StoredFile
from corral.domain.jobs import AttemptRef
from corral.store.files_common import (
    FILE_COLUMNS,
    FileStoreMixin,
    file_from_row,
    provisional_params,
)
from corral.store.sqlite import ops
from corral.store.sqlite.engine import Readers, Writer

_BEGIN = (
    "INSERT INTO files (id, owner_id, filename, content_type, created_at, expires_at, "
    "job_id, attempt, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_OWNED = (
    "SELECT coalesce(sum(size), 0) FROM files WHERE owner_id = ? AND expires_at >= ? "
    "AND sha256 != ''"
)
# Chunks of artifacts the new one replaces (same attempt, same path), then their rows.
_REPLACED = "SELECT id FROM files WHERE job_id = ? AND attempt = ? AND path = ? AND id != ?"


def _delete_files(conn: sqlite3.Connection, ids: list[str]) -> None:
    for file_id in ids:
        conn.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
        conn.execute("DELETE FROM files WHERE id = ?", (file_id,))


def _chunk(conn: sqlite3.Connection, *, file_id: str, seq: int) -> bytes | None:
    row = conn.execute(
        "SELECT data FROM file_chunks WHERE file_id = ? AND seq = ?", (file_id, seq)
    ).fetchone()
    return None if row is None else bytes(row[0])


class SqliteFiles(FileStoreMixin):
    """The file half of ``SqliteStore``."""

    _writer: Writer
    _readers: Readers

    async def _file_begin(self, new: NewFile, fence: AttemptRef | None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if fence is not None and new.job_id is not None:
                ops.fenced_job(conn, new.job_id, fence)
            conn.execute(_BEGIN, provisional_params(new))

        await self._writer.submit(op)

    async def _file_put_chunk(self, file_id: str, seq: int, data: bytes) -> None:
        await self._writer.submit(
            lambda c: c.execute(
                "INSERT INTO file_chunks (file_id, seq, data) VALUES (?, ?, ?)",
                (file_id, seq, data),
            )
        )

    async def _file_finish(
        self, new: NewFile, size: int, sha256: str, fence: AttemptRef | None
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if fence is not None and new.job_id is not None:
                ops.fenced_job(conn, new.job_id, fence)
                rows = conn.execute(_REPLACED, (new.job_id, new.attempt, new.path, new.id))
                _delete_files(conn, [r[0] for r in rows.fetchall()])
            conn.execute(
                "UPDATE files SET size = ?, sha256 = ?, expires_at = ? WHERE id = ?",
                (size, sha256, new.expires_at, new.id),
            )

        await self._writer.submit(op)

    async def _file_discard(self, file_id: str) -> None:
        await self._writer.submit(lambda c: _delete_files(c, [file_id]))

    async def get_file(self, file_id: str) -> StoredFile | None:
        def op(conn: sqlite3.Connection) -> StoredFile | None:
            row = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE id = ? AND sha256 != ''", (file_id,)
            ).fetchone()
            return file_from_row(row) if row else None

        return await self._readers.run(op)

    async def _file_chunks(self, file_id: str, first_seq: int) -> AsyncIterator[bytes]:
        """Chunk by chunk, one read each: memory stays at one chunk whatever the size."""
        seq = first_seq
        while True:
            data = await self._readers.run(partial(_chunk, file_id=file_id, seq=seq))
            if data is None:
                return
            yield data
            seq += 1

    async def list_artifacts(self, job_id: str) -> list[StoredFile]:
        def op(conn: sqlite3.Connection) -> list[StoredFile]:
            rows = conn.execute(
                f"SELECT {FILE_COLUMNS} FROM files WHERE job_id = ? AND sha256 != '' "
                "ORDER BY attempt, path",
                (job_id,),
            ).fetchall()
            return [file_from_row(r) for r in rows]

        return await self._readers.run(op)

    async def delete_expired_files(self, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            ids = [
                r[0]
                for r in conn.execute("SELECT id FROM files WHERE expires_at < ? LIMIT 500", (now,))
            ]
            _delete_files(conn, ids)
            return len(ids)

        count: int = await self._writer.submit(op)
        return count

    async def owned_bytes(self, owner_id: str, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute(_OWNED, (owner_id, now)).fetchone()
            return int(row[0])

        return await self._readers.run(op)
