"""Mounting ``/mcp`` on ``corral server`` without making every server pay for the SDK.

The ``mcp`` SDK takes about half a second of CPU to import, which every
``corral server`` start would pay whether or not an agent ever connects. So the
route is mounted at once, and the SDK is imported, the server built and its
session manager started at the first request to ``/mcp``, by a task the app's
lifespan owns (the manager's task group must outlive the request that woke it).
This module imports nothing of the SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.responses import JSON
from corral.services.container import Services

PATH = "/mcp"
log = logging.getLogger("corral.mcp")


class LazyMcp:
    """The ASGI app at ``/mcp``: wakes the server, waits until it is up, hands over."""

    def __init__(self) -> None:
        self._wanted = asyncio.Event()
        self._ready = asyncio.Event()
        self._endpoint: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._wanted.set()
        await self._ready.wait()
        if self._endpoint is None:
            body = {"error": "the MCP server could not start; see the server's log", "status": 503}
            await JSON(body, status_code=503)(scope, receive, send)
            return
        await self._endpoint(scope, receive, send)

    async def serve(self, services: Services) -> None:
        """For the app's lifetime: once wanted, build the server and run its sessions."""
        await self._wanted.wait()
        try:
            from corral.mcp.http import endpoint_for

            endpoint, manager = endpoint_for(services)
        except Exception:
            log.exception("the MCP server could not start", extra={"action": "mcp_failed"})
            self._ready.set()
            return
        async with manager.run():
            self._endpoint = endpoint
            self._ready.set()
            await asyncio.Event().wait()  # until the lifespan cancels this task


def install(app: FastAPI) -> None:
    """Serve ``/mcp`` on ``app`` (``corral server`` calls this after ``create_app``)."""
    services: Services = app.state.services
    lazy = LazyMcp()
    app.router.routes.append(Route(PATH, endpoint=lazy))
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        async with outer(instance) as state:
            task = asyncio.create_task(lazy.serve(services), name="corral-mcp")
            try:
                yield state
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.router.lifespan_context = lifespan
