"""Issue 18: ``corral server`` mounts ``/mcp`` without importing the MCP SDK, which is
loaded at the first request to ``/mcp`` only (about half a second of CPU saved on
every server start no agent uses)."""

from __future__ import annotations

import subprocess
import sys

from fastapi import FastAPI

from corral.mcp.mount import PATH, install
from tests.processes import clean_env


def test_item18_a_server_start_does_not_import_the_mcp_sdk() -> None:
    code = (
        "import sys, corral.cli.main, corral.cli.server_cmd, corral.mcp.mount; "
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_item18_install_mounts_the_route_and_wraps_the_lifespan() -> None:
    app = FastAPI()
    app.state.services = object()
    before = app.router.lifespan_context
    install(app)
    assert PATH in [getattr(route, "path", None) for route in app.router.routes]
    assert app.router.lifespan_context is not before
