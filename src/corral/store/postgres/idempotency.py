"""Idempotency records on PostgreSQL: forgetting the old ones (kept and read in ``postgres``)."""

from __future__ import annotations

import contextlib
from typing import Any

# Oldest first, through idempotency_keys_created. SKIP LOCKED: replicas sweeping at
# the same moment take different rows instead of waiting on each other's.
_DELETE_OLDEST = """
DELETE FROM idempotency_keys WHERE (principal_id, key) IN (
  SELECT principal_id, key FROM idempotency_keys
  WHERE created_at < $1 ORDER BY created_at LIMIT $2
  FOR UPDATE SKIP LOCKED)
"""


class PostgresIdempotency:
    def _conn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        raise NotImplementedError

    async def delete_idempotency_before(self, cutoff: float, limit: int) -> int:
        async with self._conn() as conn:
            status: str = await conn.execute(_DELETE_OLDEST, cutoff, limit)
        return int(status.rsplit(" ", 1)[-1])  # "DELETE <n>"
