"""The LISTEN connection: what other replicas announce, kept through database restarts.

One dedicated connection (never a pool one: a pooled connection goes back to
the pool between uses and would miss notifications) LISTENs on the store's
channel and hands every payload to ``deliver``.

It can be lost in two ways. Loudly: the database restarts, an admin terminates
the backend; asyncpg then calls the termination listener. Silently: the
database's host rebooted or the network between was cut, and an idle
connection sends nothing that could fail, so it would wait for notifications
for ever. A ping every ``PING_EVERY`` seconds, given up after ``PING_TIMEOUT``,
turns the second into the first.

Either way it is re-established with backoff for as long as the store is open,
and ``deliver`` then hears ``RESYNC``: whatever was announced meanwhile is gone,
so every waiter must look at the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from corral.store.base import RESYNC
from corral.store.postgres import sql as q

log = logging.getLogger("corral.store.postgres")

PING_EVERY = 5.0
PING_TIMEOUT = 5.0
RECONNECT_FIRST = 0.05
RECONNECT_MAX = 5.0


class Listening:
    """``await start()`` once; then listens until ``close()``, whatever the database does."""

    def __init__(self, dsn: str, deliver: Callable[[str], None], connect_timeout: float) -> None:
        self.dsn = dsn
        self.deliver = deliver
        self.connect_timeout = connect_timeout
        self.conn: Any = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Listen before returning, so a change announced after it is never missed."""
        self._closing = False
        await self._connect()
        self._supervisor = asyncio.create_task(self._keep(), name="corral-pg-listen")

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._drop()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout,
            server_settings={"application_name": "corral-listen"},
        )
        try:
            conn.add_termination_listener(self._on_lost)
            await conn.add_listener(q.CHANNEL, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self.conn = conn

    async def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_lost)
            conn.terminate()  # not close(): a dead peer would keep a polite goodbye waiting

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.deliver(payload)

    def _on_lost(self, _conn: Any) -> None:
        if not self._closing:
            self._lost.set()

    async def _keep(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PING_EVERY):
                    await self._lost.wait()
            if not self._lost.is_set() and await self._answers():
                continue
            self._lost.clear()
            log.warning(
                "PostgreSQL LISTEN connection lost; reconnecting",
                extra={"action": "listen_lost"},
            )
            await self._drop()
            await self._reconnect()
            log.info("PostgreSQL LISTEN connection restored", extra={"action": "listen_restored"})
            self.deliver(RESYNC)  # announcements made while it was away are lost

    async def _answers(self) -> bool:
        """Whether the connection still answers a query in time."""
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await self.conn.fetchval("SELECT 1")
        except (*q.CONNECTION_ERRORS, asyncpg.PostgresError):
            return False
        return True

    async def _reconnect(self) -> None:
        delay = RECONNECT_FIRST
        while True:
            try:
                await self._connect()
                return
            except (*q.CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning(
                    "LISTEN reconnect failed (%s); retrying in %.2fs",
                    exc,
                    delay,
                    extra={"action": "listen_reconnect_failed"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
