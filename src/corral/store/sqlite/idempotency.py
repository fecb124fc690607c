"""Idempotency records on SQLite: forgetting the old ones (kept and read in ``sqlite``)."""

from __future__ import annotations

import sqlite3

from corral.store.sqlite.engine import Writer

# Oldest first, through idempotency_keys_created; the primary key picks the rows to go.
_DELETE_OLDEST = """
DELETE FROM idempotency_keys WHERE (principal_id, key) IN (
  SELECT principal_id, key FROM idempotency_keys
  WHERE created_at < ? ORDER BY created_at LIMIT ?)
"""


class SqliteIdempotency:
    _writer: Writer

    async def delete_idempotency_before(self, cutoff: float, limit: int) -> int:
        """One short write per batch, so a large backlog never holds the writer for long."""

        def op(conn: sqlite3.Connection) -> int:
            return conn.execute(_DELETE_OLDEST, (cutoff, limit)).rowcount

        deleted: int = await self._writer.submit(op)
        return deleted
