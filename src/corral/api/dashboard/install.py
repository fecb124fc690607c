"""Mount the dashboard on the app: its pages, its event stream and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from corral.api.dashboard import (
    routes_accounts,
    routes_auth,
    routes_events,
    routes_fleet,
    routes_home,
    routes_job,
    routes_schedules,
    routes_submit,
    routes_workflows,
)

STATIC = Path(__file__).parent / "static"
ROUTERS = (
    routes_auth.router,
    routes_events.router,
    routes_home.router,
    routes_job.router,
    routes_submit.router,
    routes_fleet.router,
    routes_accounts.router,
    routes_workflows.router,
    routes_schedules.router,
)


def install_dashboard(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
