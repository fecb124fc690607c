"""The `corral` entry point: one typer app, each command group in its own module."""

from __future__ import annotations

import typer

from corral.cli import (
    files_cmd,
    jobs_cmd,
    mcp_cmd,
    server_cmd,
    token_cmd,
    user_cmd,
    watch_cmd,
    worker_cmd,
)

app = typer.Typer(
    name="corral",
    help="Corral: run commands on a fleet of workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command registration: each module adds its commands to `app`.
server_cmd.register(app)
token_cmd.register(app)
user_cmd.register(app)
for _module in (worker_cmd, jobs_cmd, files_cmd, watch_cmd, mcp_cmd):
    _module.register(app)


if __name__ == "__main__":
    app()
