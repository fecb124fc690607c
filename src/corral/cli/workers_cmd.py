"""`corral workers`: list the fleet, drain a worker, remove one (as the dashboard does).

``drain NAME`` marks the worker draining on the dispatcher; its next heartbeat
tells it to take no more jobs, let the running ones finish and exit, exactly
as a first Ctrl-C would. ``remove NAME`` forgets the worker and revokes the
tokens bound to it; a worker still running is refused at its next call.
"""

from __future__ import annotations

import typer

from corral.cli.common import JsonOpt, ServerOpt, TokenOpt, client_session, print_rows

workers_app = typer.Typer(
    name="workers",
    help="List workers (no subcommand), or drain or remove one.",
    invoke_without_command=True,
    no_args_is_help=False,
)

COLUMNS = (
    "executor_id",
    "state",
    "hostname",
    "labels",
    "isolation",
    "capacity",
    "reserved",
    "concurrency",
    "running_job_ids",
    "jobs_completed",
    "last_heartbeat",
)


def register(app: typer.Typer) -> None:
    app.add_typer(workers_app)


@workers_app.callback()
def workers(
    ctx: typer.Context,
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """List registered workers (executors); `drain NAME` and `remove NAME` act on one."""
    if ctx.invoked_subcommand is not None:
        return
    with client_session(server, token) as client:
        rows = client.executors()
    print_rows(rows, COLUMNS, as_json, "Workers")


@workers_app.command("drain")
def drain(
    name: str = typer.Argument(..., help="The worker's name (its executor id)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Stop a worker taking jobs; it finishes the running ones, then exits."""
    with client_session(server, token) as client:
        client.drain_executor(name)
    typer.echo(f"{name} draining: it takes no new jobs and exits once its jobs end")


@workers_app.command("remove")
def remove(
    name: str = typer.Argument(..., help="The worker's name (its executor id)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Forget a worker and revoke the tokens bound to it (admins)."""
    with client_session(server, token) as client:
        client.remove_executor(name)
    typer.echo(f"{name} removed")
