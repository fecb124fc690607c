"""User commands over the SDK: submit, status, cancel, resubmit, jobs (logs, workers and
login have their own modules)."""

from __future__ import annotations

import json
import os
import shlex
import uuid
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from corral.cli import following
from corral.cli.common import (
    JsonOpt,
    ServerOpt,
    TokenOpt,
    cell,
    client_session,
    output_notes,
    print_rows,
)
from corral.cli.config import fail
from corral.cli.job_ids import parse_since, resolve
from corral.cli.listing import print_jobs
from corral.domain.retention import MAX_RETENTION_DAYS


def register(app: typer.Typer) -> None:
    for command in (submit, status, cancel, resubmit, jobs):
        name = command.__name__
        app.command(name, **_extra_args(name))(command)


def _extra_args(name: str) -> dict[str, Any]:
    """``submit`` takes the command after ``--`` verbatim, options and all."""
    if name == "submit":
        return {"context_settings": {"allow_interspersed_args": False}}
    return {}


def submit(
    command: list[str] = typer.Argument(
        ...,
        help="One argument is a shell command line ('echo $HOME | tr a-z A-Z'); several "
        "are a command and its arguments, each passed as one word (after --).",
    ),
    name: str | None = typer.Option(None, "--name", "-n", help="A name shown in lists."),
    retries: int | None = typer.Option(
        None,
        "--retries",
        min=0,
        max=100,
        help="Rerun a failing job (non-zero exit, timeout) up to N times, with exponential "
        "backoff and jitter. Without it, only a lost worker is retried.",
    ),
    retention_days: int | None = typer.Option(
        None,
        "--retention-days",
        min=0,
        max=MAX_RETENTION_DAYS,
        help="Days the job is kept once finished, then deleted with its output; 0 keeps "
        "it for ever. Default: the server's --retention.",
    ),
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
    output: list[str] = typer.Option(
        [],
        "--output",
        "-o",
        help="A file, directory or glob the job produces (a directory or glob is saved "
        "as one zip), repeatable.",
    ),
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
    concurrency_key: str | None = typer.Option(
        None,
        "--concurrency-key",
        help="Jobs sharing this key run at most --concurrency-limit at once (default 1).",
    ),
    concurrency_limit: int | None = typer.Option(
        None,
        "--concurrency-limit",
        min=1,
        max=1000,
        help="How many jobs of --concurrency-key may run at once (1-1000).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Wait for the job; exit with its code."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream output; exit with its code."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Submit a job and print its id.

    `corral submit 'make test && ./deploy'` runs that line with `sh -c`; `corral submit
    -- python3 -c 'print(1)'` passes each argument as one word (quoted with shlex).
    """
    resources = {"cpus": cpus, "memory_mb": _parse_memory(memory), "pids": pids}
    if input_archive is not None and not zipfile.is_zipfile(input_archive):
        fail(f"--input {input_archive}: not a zip archive (make one with `zip -r`)", 2)
    fields: dict[str, Any] = {
        "command": shell_line(command),
        "name": name,
        "max_retries": retries,
        "retry_on_failure": True if retries else None,
        "retention_days": retention_days,
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
        "concurrency_key": concurrency_key,  # docs/flow-control.md
        "concurrency_limit": concurrency_limit,
    }
    with client_session(server, token) as client:
        if input_archive is not None:
            fields["input_file_id"] = client.upload(input_archive)["id"]
        # A key of its own: a submit whose answer was lost with its replica is sent again
        # (to the next one, with --server A,B) and answered with the same job, never a second.
        job = client.submit(idempotency_key=f"cli-{uuid.uuid4()}", **fields)
        if not (wait or follow):
            typer.echo(json.dumps(job) if as_json else job["id"])
            return
        if not as_json:
            typer.echo(job["id"], err=True)
            following.say_why_pending(client.get(job["id"]))
        job_id = job["id"]
        final = following.follow(client, job_id) if follow else following.wait_for(client, job_id)
        if as_json:
            typer.echo(json.dumps(client.get(job["id"])))
    raise typer.Exit(following.exit_status(final))


def status(
    job_id: str = typer.Argument(..., help="A job id or a unique prefix (8+ characters)."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show one job: how it ended, which retries apply, what was not collected."""
    with client_session(server, token) as client:
        job = client.get(resolve(client, job_id))
    if as_json:
        typer.echo(json.dumps(job))
        return
    keys = (
        "id",
        "name",
        "status",
        "outcome",
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
        "outputs",
        "concurrency_key",
        "concurrency_limit",
        "pending_reason",
        "retries",
    )
    for key in keys:
        if job.get(key) not in (None, [], ""):
            typer.echo(f"{key:14} {cell(job[key])}")
    for note in output_notes(job):
        typer.echo(f"{'not collected':14} {note}")


def cancel(
    job_id: str = typer.Argument(..., help="A job id or a unique prefix (8+ characters)."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Cancel a job (a running one is killed by its worker)."""
    with client_session(server, token) as client:
        job_id = resolve(client, job_id)
        answer = client.cancel(job_id)
    note = " (cancel requested)" if answer.get("cancel_requested") else ""
    typer.echo(f"{job_id} {answer.get('status', 'cancelled')}{note}")


def resubmit(
    job_id: str = typer.Argument(..., help="A job id or a unique prefix (8+ characters)."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Submit a job's spec again as a new job and print the new id."""
    with client_session(server, token) as client:
        fresh = client.resubmit(resolve(client, job_id))
    typer.echo(json.dumps(fresh) if as_json else fresh["id"])


def jobs(
    status: str | None = typer.Option(None, "--status", help="pending, running, completed..."),
    label: str | None = typer.Option(None, "--label", "-l", help="Jobs carrying this label."),
    worker: str | None = typer.Option(None, "--worker", "-w", help="Jobs run by this worker."),
    text: str | None = typer.Option(None, "--text", "-t", help="Text in the command or name."),
    since: str | None = typer.Option(
        None, "--since", help="Created since: 30m, 2h, 1d ago, or an ISO time (UTC)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    wide: bool = typer.Option(False, "--wide", help="Full ids and every column."),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """List jobs, newest first, with short ids that every command accepts."""
    filters: dict[str, Any] = {
        "label": label,
        "executor_id": worker,
        "text": text,
        "created_after": parse_since(since) if since else None,
    }
    with client_session(server, token) as client:
        rows = client.list(status=status, limit=limit, **filters)
    if as_json or wide:
        columns = ("id", "name", "status", "priority", "executor_id", "exit_code", "created_at")
        print_rows(rows, (*columns, "command"), as_json, "Jobs")
        return
    print_jobs(rows)


# ---- helpers ---------------------------------------------------------------------------


def shell_line(words: Sequence[str]) -> str:
    """One word is a shell line as typed; several are argv, each quoted to stay one word."""
    return words[0] if len(words) == 1 else shlex.join(words)


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
