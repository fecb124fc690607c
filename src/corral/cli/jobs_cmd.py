"""User commands over the SDK: submit, status, logs, cancel, jobs, workers, login.

Lists are rich tables on a terminal and tab-separated text otherwise; ``--json``
prints the server's JSON for scripts. A server error is one line on stderr and
a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from corral.cli.config import fail, resolve_credentials, save
from corral.client import CorralAPIError, CorralClient, EndEvent

ServerOpt = typer.Option(None, "--server", envvar="CORRAL_URL", help="Dispatcher URL.")
TokenOpt = typer.Option(None, "--token", envvar="CORRAL_TOKEN", help="API token.")
JsonOpt = typer.Option(False, "--json", help="Print JSON.")
TERMINAL = ("completed", "failed", "cancelled")


def register(app: typer.Typer) -> None:
    for command in (submit, status, logs, cancel, jobs, workers, login):
        name = command.__name__
        app.command(name, **_extra_args(name))(command)


def _extra_args(name: str) -> dict[str, Any]:
    """``submit`` takes the command after ``--`` verbatim, options and all."""
    if name == "submit":
        return {"context_settings": {"allow_interspersed_args": False}}
    return {}


@contextmanager
def _client(server: str | None, token: str | None) -> Iterator[CorralClient]:
    url, secret = resolve_credentials(server, token)
    try:
        with CorralClient(url, secret) as client:
            yield client
    except CorralAPIError as exc:
        fail(str(exc), 2 if exc.status in (400, 404, 409, 422) else 1)
    except KeyboardInterrupt:  # Ctrl-C while waiting or following: the job keeps running
        raise typer.Exit(130) from None


def submit(
    command: list[str] = typer.Argument(..., help="The command and its arguments (after --)."),
    label: list[str] = typer.Option([], "--label", "-l", help="A label workers must have."),
    timeout: int | None = typer.Option(None, help="Seconds before the job is killed."),
    priority: str | None = typer.Option(None, help="high|normal|low or the queue class."),
    env: list[str] = typer.Option([], "--env", "-e", help="K=V, repeatable."),
    output: list[str] = typer.Option([], "--output", "-o", help="A path the job produces."),
    input_archive: Path | None = typer.Option(
        None,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="A .zip uploaded and extracted into the job's directory before it runs.",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job; exit with its code."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream output; exit with its code."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Submit `CMD ARGS...` as a shell job and print its id."""
    fields: dict[str, Any] = {
        "command": shlex.join(command),
        "labels": label or None,
        "timeout": timeout,
        "priority": priority,
        "env_variables": _parse_env(env) or None,
        "outputs": output or None,
    }
    with _client(server, token) as client:
        if input_archive is not None:
            fields["input_file_id"] = client.upload(input_archive)["id"]
        job = client.submit(**fields)
        if not (wait or follow):
            typer.echo(json.dumps(job) if as_json else job["id"])
            return
        if not as_json:
            typer.echo(job["id"], err=True)
        final = _follow(client, job["id"]) if follow else _wait(client, job["id"])
        if as_json:
            typer.echo(json.dumps(client.get(job["id"])))
    raise typer.Exit(_exit_status(final))


def status(
    job_id: str,
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show one job."""
    with _client(server, token) as client:
        job = client.get(job_id)
    if as_json:
        typer.echo(json.dumps(job))
        return
    keys = (
        "id",
        "status",
        "command",
        "binary_url",
        "executor_id",
        "attempt",
        "exit_code",
        "error_message",
        "created_at",
        "started_at",
        "finished_at",
        "labels",
    )
    for key in keys:
        if job.get(key) not in (None, [], ""):
            typer.echo(f"{key:14} {job[key]}")


def logs(
    job_id: str,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until it ends."),
    stream: str = typer.Option("stdout", help="stdout or stderr (without --follow)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Print a job's output."""
    with _client(server, token) as client:
        if follow:
            final = _follow(client, job_id)
            raise typer.Exit(_exit_status(final))
        sys.stdout.write(client.read_output(job_id, stream))


def cancel(job_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Cancel a job (a running one is killed by its worker)."""
    with _client(server, token) as client:
        answer = client.cancel(job_id)
    note = " (cancel requested)" if answer.get("cancel_requested") else ""
    typer.echo(f"{job_id} {answer.get('status', 'cancelled')}{note}")


def jobs(
    status: str | None = typer.Option(None, "--status", help="pending, running, completed..."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """List jobs."""
    with _client(server, token) as client:
        rows = client.list(status=status, limit=limit)
    columns = ("id", "status", "priority", "executor_id", "exit_code", "created_at", "command")
    _print_rows(rows, columns, as_json, "Jobs")


def workers(
    as_json: bool = JsonOpt, server: str | None = ServerOpt, token: str | None = TokenOpt
) -> None:
    """List registered workers (executors)."""
    with _client(server, token) as client:
        rows = client.executors()
    columns = (
        "executor_id",
        "state",
        "hostname",
        "labels",
        "concurrency",
        "running_job_ids",
        "jobs_completed",
        "last_heartbeat",
    )
    _print_rows(rows, columns, as_json, "Workers")


def login(
    url: str = typer.Argument(..., help="Dispatcher URL, e.g. http://127.0.0.1:3000"),
    token: str = typer.Option(..., "--token", help="API token to save."),
) -> None:
    """Check the token against the server and save it to the user's config (mode 0600)."""
    with _client(url, token) as client:
        client.list(limit=1)
    typer.echo(f"saved to {save(url.rstrip('/'), token)}")


# ---- helpers ---------------------------------------------------------------------------


def _parse_env(pairs: Sequence[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--env expects K=V, got {pair!r}", 2)
        env[name] = value
    return env


def _wait(client: CorralClient, job_id: str) -> dict[str, Any]:
    """Poll with a growing pause until the job is finished."""
    pause = 0.1
    while True:
        job = client.get(job_id)
        if job["status"] in TERMINAL:
            return job
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)


def _follow(client: CorralClient, job_id: str) -> dict[str, Any]:
    """Copy output events to our stdout/stderr as they arrive; fall back to polling at EOF."""
    outs = {"stdout": sys.stdout, "stderr": sys.stderr}
    for event in client.follow(job_id):
        if isinstance(event, EndEvent):
            return {
                "status": event.status,
                "exit_code": event.exit_code,
                "error_message": event.error_message,
            }
        out = outs.get(event.stream, sys.stdout)
        out.write(event.data)
        out.flush()
    return _wait(client, job_id)


def _exit_status(job: dict[str, Any]) -> int:
    """The job's own exit code when it has one; otherwise 0 for success, 1 for anything else."""
    if job.get("error_message") and job["status"] != "completed":
        typer.echo(f"job {job['status']}: {job['error_message']}", err=True)
    code = job.get("exit_code")
    if isinstance(code, int):
        return code if 0 <= code <= 255 else 1
    return 0 if job["status"] == "completed" else 1


def _print_rows(
    rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool, title: str
) -> None:
    if as_json:
        typer.echo(json.dumps(rows))
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if not sys.stdout.isatty():
        for line in [list(columns), *cells]:
            typer.echo("\t".join(line))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for line in cells:
        table.add_row(*line)
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    return str(value)
