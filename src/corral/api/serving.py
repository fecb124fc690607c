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
"""

from __future__ import annotations

import socket

import uvicorn
from fastapi import FastAPI

from corral.api.app import release_waiters
from corral.settings import ServerSettings

GRACEFUL_SECONDS = 5.0  # for requests still open once the waiters are released


class CorralServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        release_waiters(self._app)  # step 1, before uvicorn starts waiting on them
        await super().shutdown(sockets)
        # Step 4: uvicorn re-raises the signals it caught once serve() returns; a
        # stop that completed is a success, not a death by SIGTERM (status -15).
        self._captured_signals.clear()


def serve(app: FastAPI, settings: ServerSettings) -> None:
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
    )
    CorralServer(config, app).run()
