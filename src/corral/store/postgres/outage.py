"""Whether PostgreSQL answers, said in the log once per outage rather than once per request.

While the database is away every request and every background pass meets it,
dozens of times a second; the log gets one ``database_unreachable`` line when
the first of them fails and one ``database_reachable`` line, with how long it
lasted, when a statement succeeds again; asyncpg's own warnings about
refilling its pool come as one line each, not a traceback. Clients get
``UNAVAILABLE``, which tells them what to do, not the driver's text
(addresses, errno).

A statement that runs past the pool's command timeout (waiting on a lock held too
long elsewhere, or on a server that stopped answering) is cancelled by asyncpg; it
gets one ``database_statement_timeout`` line of its own, since the database may
well be answering everyone else.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("corral.store.postgres")

UNAVAILABLE = "the database is unavailable; try again shortly"


class Outage:
    """The start of the current outage (monotonic), or None while the database answers."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "PostgreSQL unreachable: %s",
                exc,
                extra={"action": "database_unreachable", "error": str(exc)},
            )

    def answered(self) -> None:
        """Called after every successful use of a connection: one attribute test."""
        if self.since is not None:
            seconds = round(time.monotonic() - self.since, 3)
            self.since = None
            log.warning(
                "PostgreSQL reachable again after %.1f s",
                seconds,
                extra={"action": "database_reachable", "seconds": seconds},
            )


def statement_timed_out(seconds: float) -> None:
    """Say in the log that a statement was cancelled after ``seconds``."""
    log.warning(
        "PostgreSQL statement cancelled after the command timeout (%s s)",
        seconds,
        extra={"action": "database_statement_timeout", "seconds": seconds},
    )


class OneLinePoolWarnings(logging.Filter):
    """asyncpg's pool logs each failed attempt to refill itself with a traceback, every
    few seconds of an outage; the error's text says all an operator needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()} ({record.exc_info[1]})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_pool_warnings() -> None:
    """Install ``OneLinePoolWarnings`` on asyncpg's pool logger, once."""
    pool_log = logging.getLogger("asyncpg.pool")
    if not any(isinstance(f, OneLinePoolWarnings) for f in pool_log.filters):
        pool_log.addFilter(OneLinePoolWarnings())
