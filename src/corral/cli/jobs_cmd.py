"""User commands over the SDK: submit, status, logs, cancel, jobs, workers, login."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from corral.cli.common import (
    TERMINAL,
    JsonOpt,
    ServerOpt,
    TokenOpt,
    client_session,
    print_rows,
)
from corral.cli.config import fail, save
from corral.client import CorralClient, EndEvent


def register(app: typer.Typer) -> None:
    for command in (submit, status, logs, cancel, jobs, workers, login):
        name = command.__name__
        app.command(name, **_extra_args(name))(command)


def _extra_args(name: str) -> dict[str, Any]:
    """``submit`` takes the command after ``--`` verbatim, options and all."""
    if name == "submit":
        return {"context_settings": {"allow_interspersed_args": False}}
    return {}


def submit(
    command: list[str] = typer.Argument(..., help="The command and its arguments (after --)."),
    label: list[str] = typer.Option([], "--label", "-l", help="A label workers must have."),
    timeout: int | None = typer.Option(None, help="Seconds before the job is killed."),
    priority: str | None = typer.Option(None, help="high|normal|low or the queue class."),
    env: list[str] = typer.Option([], "--env", "-e", help="K=V, repeatable."),
    secret_env: list[str] = typer.Option(
        [],
        "--secret-env",
        help="NAME=VALUE, repeatable: set for the job, masked in every answer. A bare "
        "NAME takes the value from this shell's environment (kept out of ps and history).",
    ),
    output: list[str] = typer.Option([], "--output", "-o", help="A path the job produces."),
    input_archive: Path | None = typer.Option(
        None,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="A .zip uploaded and extracted into the job's directory before it runs.",
    ),
    cpus: float | None = typer.Option(
        None, "--cpus", help="CPUs the job gets (a quota), reserved on the worker that runs it."
    ),
    memory: str | None = typer.Option(
        None, "--memory", help="Hard memory limit, reserved on the worker: 512M, 2G, or MiB."
    ),
    pids: int | None = typer.Option(None, "--pids", help="Most processes the job may have."),
    no_network: bool = typer.Option(
        False, "--no-network", help="Run with no network (only on workers that can cut it)."
    ),
    after: list[str] = typer.Option([], "--after", help="A job id to wait for (repeatable)."),
    run_if: str | None = typer.Option(
        None, "--run-if", help="success (default), failure or always: the --after jobs' ends."
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job; exit with its code."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream output; exit with its code."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Submit `CMD ARGS...` as a shell job and print its id."""
    resources = {"cpus": cpus, "memory_mb": _parse_memory(memory), "pids": pids}
    fields: dict[str, Any] = {
        "command": shlex.join(command),
        "labels": label or None,
        "timeout": timeout,
        "priority": priority,
        "env_variables": _parse_env(env) or None,
        "secret_env": _parse_secret_env(secret_env) or None,
        "outputs": output or None,
        "resources": resources if any(v is not None for v in resources.values()) else None,
        "network": False if no_network else None,
        "depends_on": after or None,  # docs/workflows.md
        "run_if": run_if,
    }
    with client_session(server, token) as client:
        if input_archive is not None:
            fields["input_file_id"] = client.upload(input_archive)["id"]
        job = client.submit(**fields)
        if not (wait or follow):
            typer.echo(json.dumps(job) if as_json else job["id"])
            return
        if not as_json:
            typer.echo(job["id"], err=True)
            _say_why_pending(client.get(job["id"]))
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
    with client_session(server, token) as client:
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
        "resources",
        "pending_reason",
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
    with client_session(server, token) as client:
        if follow:
            final = _follow(client, job_id)
            raise typer.Exit(_exit_status(final))
        sys.stdout.write(client.read_output(job_id, stream))


def cancel(job_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Cancel a job (a running one is killed by its worker)."""
    with client_session(server, token) as client:
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
    with client_session(server, token) as client:
        rows = client.list(status=status, limit=limit)
    columns = ("id", "status", "priority", "executor_id", "exit_code", "created_at", "command")
    print_rows(rows, columns, as_json, "Jobs")


def workers(
    as_json: bool = JsonOpt, server: str | None = ServerOpt, token: str | None = TokenOpt
) -> None:
    """List registered workers (executors)."""
    with client_session(server, token) as client:
        rows = client.executors()
    columns = (
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
    print_rows(rows, columns, as_json, "Workers")


def login(
    url: str = typer.Argument(..., help="Dispatcher URL, e.g. http://127.0.0.1:3000"),
    token: str = typer.Option(..., "--token", help="API token to save."),
) -> None:
    """Check the token against the server and save it to the user's config (mode 0600)."""
    with client_session(url, token) as client:
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


def _parse_secret_env(pairs: Sequence[str]) -> dict[str, str]:
    """Messages name the variable only: a secret must not end up in a terminal log."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not name:
            fail("--secret-env expects NAME=VALUE or NAME", 2)
        if not sep:
            if name not in os.environ:
                fail(f"--secret-env {name}: no such variable in this environment", 2)
            value = os.environ[name]
        env[name] = value
    return env


def _wait(client: CorralClient, job_id: str) -> dict[str, Any]:
    """Poll with a growing pause until the job is finished."""
    pause = 0.1
    said: str | None = None
    while True:
        job = client.get(job_id)
        if job["status"] in TERMINAL:
            return job
        if job.get("pending_reason") != said:
            said = _say_why_pending(job)
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)


def _say_why_pending(job: dict[str, Any]) -> str | None:
    """Tell the user on stderr why a job waits, when no online worker could take it."""
    reason = job.get("pending_reason") if job.get("status") == "pending" else None
    if reason:
        typer.echo(f"waiting: {reason}", err=True)
    return reason


_UNITS = {"": 1, "M": 1, "MB": 1, "MIB": 1, "G": 1024, "GB": 1024, "GIB": 1024, "T": 1 << 20}


def _parse_memory(text: str | None) -> int | None:
    """``512M``, ``2G``, ``1.5G`` or a bare number of MiB, as whole MiB."""
    if text is None:
        return None
    value = text.strip().upper()
    number = value.rstrip("BGIMT")
    unit = value[len(number) :]
    try:
        mib = float(number) * _UNITS[unit]
    except (KeyError, ValueError):
        fail(f"--memory: {text!r} is not a size such as 512M or 2G")
    if not 1 <= mib <= 1 << 24:  # also refuses nan and inf
        fail(f"--memory: {text!r} must be between 1 MiB and 16 TiB")
    return int(mib)


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
