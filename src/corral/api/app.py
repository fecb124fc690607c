"""``create_app``: one FastAPI app serving every face over one set of services."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from corral import __version__
from corral.api import monitoring
from corral.api.apidocs import install_api_docs
from corral.api.bodylimit import BodyLimit
from corral.api.dashboard.install import install_dashboard
from corral.api.dashboard.routing import not_found_page, wants_html
from corral.api.dialects.cmd import routes_auth as cmd_auth
from corral.api.dialects.cmd import routes_files as cmd_files
from corral.api.dialects.cmd import routes_jobs as cmd_jobs
from corral.api.dialects.cmd import routes_stream as cmd_stream
from corral.api.dialects.cmd import routes_workers as cmd_workers
from corral.api.dialects.cmd.errors import CmdRoute
from corral.api.dialects.octaskly import routes as octaskly
from corral.api.dialects.octaskly.errors import OctasklyRoute
from corral.api.dialects.taskdriver import routes_agents as td_agents
from corral.api.dialects.taskdriver import routes_metrics as td_metrics
from corral.api.dialects.taskdriver import routes_projects as td_projects
from corral.api.dialects.taskdriver import routes_session as td_session
from corral.api.dialects.taskdriver import routes_task_types as td_task_types
from corral.api.dialects.taskdriver import routes_tasks as td_tasks
from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.headers import CORS_EXPOSED, ResponseHeaders
from corral.api.native import executing, files, fleet, jobs, tokens, users, workflows
from corral.api.native import schedules as native_schedules
from corral.api.native.errors import NativeRoute, from_validation
from corral.api.native.hotpath import HotPaths
from corral.api.ratelimit import RateLimits
from corral.api.responses import JSON
from corral.api.routing import DialectRoute, render_http_error
from corral.services.container import Services, open_store
from corral.settings import ServerSettings

log = logging.getLogger("corral.api")
DESCRIPTION = (
    "Corral runs commands on a fleet of workers. One port serves four APIs over the same "
    "jobs: the native executor-queue API (`/api/v1/...`), CMD Executor (`/api/auth`, "
    "`/api/workers`, `/api/jobs`, `/api/files`), Octaskly (`/api/v1/tasks`, `/api/v1/stats`) "
    "and TaskDriver (`/api/projects`, `/api/task-types`, `/api/tasks`, `/api/agents`). "
    "Click **Authorize** and paste an API token (`corral token create`) or a login JWT "
    "(`POST /api/auth/login`). Errors come in the body shape of the API that owns the path."
)


def create_app(settings: ServerSettings, services: Services | None = None) -> FastAPI:
    services = services or Services(open_store(settings), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.start()
        await _bootstrap_admin(services, settings)
        try:
            yield
        finally:
            await services.stop()

    app = FastAPI(
        # Corral's metrics are Prometheus's (/metrics); FastAPI's own OpenTelemetry layer
        # would only ask, on every request, whether some global provider was set up.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="Corral",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served from the package by install_api_docs, not from a CDN
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    routers = (
        jobs.router,
        workflows.router,
        executing.router,
        fleet.router,
        files.router,
        users.router,
        tokens.router,
        cmd_auth.router,
        cmd_workers.router,
        cmd_jobs.router,
        cmd_files.router,
        cmd_stream.router,
        octaskly.router,
        monitoring.router,
        td_session.router,
        td_agents.router,
        td_metrics.router,
        td_projects.router,
        td_task_types.router,
        td_tasks.router,
        native_schedules.router,
    )
    for router in routers:
        app.include_router(router)
    install_dashboard(app)
    install_api_docs(app, path_owner)
    _install_fallback_errors(app)
    app.state.rate_limits = RateLimits(settings, services.counting)  # see ratelimit.py
    app.state.cors_origins = frozenset(settings.cors_origins)  # deps.check_cookie_origin
    # add_middleware wraps what is there, so the last added is the outermost: the common
    # headers go on every answer (CORS preflights too), and the body limit wraps only receive.
    app.add_middleware(HotPaths)  # innermost: the executor's hot routes, within the limits
    app.add_middleware(
        BodyLimit,
        max_json_bytes=settings.max_json_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if settings.cors_origins:  # none configured: no CORS headers at all
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=CORS_EXPOSED,
        )
    app.add_middleware(ResponseHeaders)
    return app


# Which dialect owns a path, for the answers no route gave (an unknown path or method):
# a client of that dialect must still get its own error shape. Anything else is native.
PATH_OWNERS: list[tuple[tuple[str, ...], type[DialectRoute]]] = [
    (("/api/v1/tasks", "/api/v1/stats"), OctasklyRoute),
    (
        ("/api/projects", "/api/task-types", "/api/tasks", "/api/agents", "/api/auth/session"),
        TaskDriverRoute,
    ),
    (("/metrics/json",), TaskDriverRoute),
    (("/api/auth", "/api/workers", "/api/jobs", "/api/files", "/uploads"), CmdRoute),
]


def path_owner(path: str) -> type[DialectRoute]:
    for prefixes, owner in PATH_OWNERS:
        if any(path == p or path.startswith(p + "/") for p in prefixes):
            return owner
    return NativeRoute


def _install_fallback_errors(app: FastAPI) -> None:
    """Unknown paths and methods answer in the owning dialect's shape, not Starlette's."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and wants_html(request):
            return await not_found_page(request)  # a browser on an unknown URL: a page, not JSON
        return render_http_error(exc, path_owner(request.url.path).render_domain)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSON:
        return from_validation(exc)


def release_waiters(app: FastAPI) -> None:
    """The first step of a stop: parked long-poll claims answer "no job" and live
    streams end now, so the server never has to cancel them (see ``api/serving``)."""
    services: Services = app.state.services
    services.hub.close()


async def _bootstrap_admin(services: Services, settings: ServerSettings) -> None:
    """On a database with no admin token, mint one and say where it is, once."""
    if await services.tokens.has_admin():
        return
    _, secret = await services.tokens.mint("admin", "bootstrap-admin")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    # The secret stays out of the log: logs travel further than a mode-0600 file.
    log.warning(
        "created the first admin token; it is in %s (mode 0600)",
        path,
        extra={"action": "admin_token_created"},
    )
