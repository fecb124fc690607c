"""Run the app on uvicorn with Corral's shutdown order; ``corral server`` calls ``serve``.

uvicorn's own stop, on SIGINT or SIGTERM: close the listeners, wait up to
``timeout_graceful_shutdown`` for open requests, cancel what is left (a
``CancelledError`` traceback, a 500 for the client), run the lifespan shutdown,
then raise the signal again, so the process dies of it. Corral's stop, in order:

1. release every waiter (``Hub.close``): parked long-poll claims answer "no job"
   and live streams end, at once, instead of being cancelled five seconds later;
2. uvicorn's stop as above, which now finds only short requests to wait for;
3. the lifespan shutdown (the services and the store close);
4. exit normally: the stop was asked for and it happened, so the status is 0.

Corral's start, in order, so that a server that cannot run says why in one line
before it has done anything (today's alternative: "listening", a minted admin
token, then a traceback):

1. with ``--tls-cert``/``--tls-key``, load them (``StartupFailed`` when a file is
   missing or unreadable, the key is encrypted or does not match the certificate);
2. bind the port (``StartupFailed`` when it is taken or not ours to take);
3. open the database once and close it (``StartupFailed`` when it is unreachable:
   wrong URL, server down, bad password, unwritable data dir);
4. uvicorn's start on that socket: the lifespan opens the services and mints the
   first admin token on a new database;
5. only then the "corral listening on ..." line (``https://`` when serving TLS).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import socket
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import uvicorn
from fastapi import FastAPI

from corral.api.app import release_waiters
from corral.services.container import open_store
from corral.settings import ServerSettings

GRACEFUL_SECONDS = 5.0  # for requests still open once the waiters are released
# Under load the event loop's thread holds the interpreter lock nearly all the time,
# and a SQLite commit that ends on its own thread (a reader's query, likewise) must take
# the lock back to hand its answer over: by default it may wait 5 ms for it, while its
# callers wait too. At 1 ms the one-complete-per-job drain over HTTP ran about twice
# as fast here (docs/performance.md); at 0.2 ms the lock switched too often.
SWITCH_INTERVAL = 0.001
BACKLOG = 2048  # uvicorn's default

log = logging.getLogger("corral.server")


class StartupFailed(Exception):
    """The server cannot start; the message is the one line to show."""

    def __init__(self, message: str, action: str) -> None:
        super().__init__(message)
        self.action = action


class CorralServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # the lifespan, then serving the bound socket
        if self.started:
            # What start-up built (modules, the app, its schemas) lives as long as the
            # process: out of the collector's sight, a full collection scans only what
            # came after, and stalls the event loop a half to a third as long
            # (docs/performance.md, "Garbage collection").
            gc.freeze()
            host = self.config.host
            port = sockets[0].getsockname()[1] if sockets else self.config.port  # --port 0
            shown = f"[{host}]" if ":" in host else host
            log.info(
                "corral listening on %s://%s:%d/ (API docs at /api/docs)",
                "https" if self.config.is_ssl else "http",
                shown,
                port,
                extra={"action": "server_start"},
            )

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        release_waiters(self._app)  # step 1, before uvicorn starts waiting on them
        await super().shutdown(sockets)
        # Step 4: uvicorn re-raises the signals it caught once serve() returns; a
        # stop that completed is a success, not a death by SIGTERM (status -15).
        self._captured_signals.clear()


def serve(app: FastAPI, settings: ServerSettings) -> None:
    """Run until stopped; ``StartupFailed`` before anything happened when it cannot."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    if settings.tls_cert is not None and settings.tls_key is not None:
        check_tls(settings.tls_cert, settings.tls_key)
    listener = bind(settings.host, settings.port)
    try:
        asyncio.run(check_database(settings))
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            access_log=settings.access_log,
            loop="uvloop",
            http="httptools",
            log_config=None,
            timeout_graceful_shutdown=int(GRACEFUL_SECONDS),
            backlog=BACKLOG,
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
            # Behind a proxy: the client address (per-IP limits, executor_ip) and the
            # scheme come from these proxies' X-Forwarded-For / X-Forwarded-Proto.
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )
        CorralServer(config, app).run(sockets=[listener])
    finally:
        listener.close()


def check_tls(cert: Path, key: Path) -> None:
    """Load the pair as uvicorn will, so a bad one is one line before the port is taken.

    The password callback refuses an encrypted key instead of letting OpenSSL prompt
    on a terminal that a service does not have.
    """
    for path in (cert, key):
        try:
            path.open("rb").close()
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise StartupFailed(f"cannot read the TLS file {path}: {why}", "tls_failed") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key, password=_no_password)
    except _EncryptedKey:
        raise StartupFailed(
            f"the TLS key {key} is encrypted: give it unencrypted, readable by the server only",
            "tls_failed",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        why = getattr(exc, "reason", None) or str(exc)
        raise StartupFailed(
            f"cannot use the TLS certificate {cert} with the key {key}: {why} "
            "(both PEM, the key matching the certificate)",
            "tls_failed",
        ) from None


class _EncryptedKey(Exception):
    """OpenSSL asked for the key's password."""


def _no_password() -> str:
    raise _EncryptedKey


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else happens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=BACKLOG)
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        busy = exc.errno == errno.EADDRINUSE
        hint = " (is another server running there? use --port)" if busy else ""
        raise StartupFailed(f"cannot listen on {host}:{port}: {why}{hint}", "bind_failed") from None


async def check_database(settings: ServerSettings) -> None:
    """Open the configured database once and close it: its failure is one line here,
    instead of a traceback from uvicorn's lifespan after the port is taken."""
    store = open_store(settings)
    try:
        await store.open()
    except Exception as exc:
        where = shown_url(settings.database_url) if settings.database_url else settings.sqlite_path
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StartupFailed(
            f"cannot open the database {where}: {reason}", "database_unreachable"
        ) from None
    await store.close()


def shown_url(url: str) -> str:
    """A database URL fit for a log line: the password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
