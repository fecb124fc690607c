"""The `corral` entry point: one typer app, each command group in its own module.

The rule of every module under corral.cli: what a command needs only when it runs
(the SDK and httpx, pydantic-settings, the stores, the server, the worker's agent,
asyncio) is imported inside that command's functions, never at the top of a module.
Typer builds every command's options each time `corral` starts, so each top-level
import costs every command, `corral --version` included: importing them all made a
start take 680 ms of CPU, lazily 160 ms (bench/cli_start.py, on an idle 2-core
machine). Names used only in annotations come under ``if TYPE_CHECKING:``; what
``--help`` shows (option defaults, choices) stays in small modules.
tests/unit/test_cli_startup.py fails when a heavy import comes back.
"""

from __future__ import annotations

import typer

from corral import __version__
from corral.cli import (
    auth_cmd,
    backup_cmd,
    files_cmd,
    jobs_cmd,
    logs_cmd,
    mcp_cmd,
    prune_cmd,
    schedule_cmd,
    server_cmd,
    token_cmd,
    user_cmd,
    watch_cmd,
    worker_cmd,
    workers_cmd,
    workflow_cmd,
)

app = typer.Typer(
    name="corral",
    help="Corral: run commands on a fleet of workers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Click hands these to every sub-command's context: -h works everywhere, like --help.
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"corral {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Corral: run commands on a fleet of workers."""


# Command registration: each module adds its commands to `app`.
server_cmd.register(app)
prune_cmd.register(app)
token_cmd.register(app)
user_cmd.register(app)
auth_cmd.register(app)
for _module in (
    worker_cmd,
    jobs_cmd,
    logs_cmd,
    workers_cmd,
    files_cmd,
    watch_cmd,
    workflow_cmd,
    schedule_cmd,
    mcp_cmd,
    backup_cmd,
):
    _module.register(app)


if __name__ == "__main__":
    app()
