"""`corral schedule create|list|show|pause|resume|delete`: schedules over the HTTP API.

``create`` takes the job's command after ``--`` as ``corral submit`` does (its
options therefore all come before the command); a richer job (binary, files,
resources) can be given whole with ``--job-json``.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import typer

from corral.cli.common import JsonOpt, ServerOpt, TokenOpt, client_session, print_rows
from corral.cli.config import fail

schedule_app = typer.Typer(help="Run a job on a cron schedule, once per tick.")


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")


@schedule_app.command("create", context_settings={"allow_interspersed_args": False})
def create(
    name: str = typer.Option(..., "--name", help="A name to recognise the schedule by."),
    command: list[str] = typer.Argument(None, help="The job's command and arguments (after --)."),
    cron: str = typer.Option(
        ..., "--cron", help="5 fields, or 6 with leading seconds: '*/10 * * * * *'."
    ),
    timezone: str = typer.Option(
        "UTC", "--timezone", "--tz", help="IANA zone, e.g. Europe/Berlin."
    ),
    overlap: str = typer.Option("skip", help="allow | skip | cancel_previous"),
    catch_up: str = typer.Option("none", "--catch-up", help="none | one (after downtime)."),
    jitter: int = typer.Option(0, "--jitter", help="Delay each run by up to this many seconds."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    label: list[str] = typer.Option([], "--label", "-l", help="A label workers must have."),
    priority: str | None = typer.Option(None, help="high|normal|low or the queue class."),
    timeout: int | None = typer.Option(None, help="Seconds before each run is killed."),
    job_json: str | None = typer.Option(
        None, "--job-json", help="The whole job as a JSON submit body instead of a command."
    ),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Create a schedule and print its id and next runs."""
    job = _job(command or [], job_json, label, priority, timeout)
    body = {
        "name": name,
        "cron": cron,
        "timezone": timezone,
        "job": job,
        "overlap": overlap,
        "catch_up": catch_up,
        "jitter_seconds": jitter,
        "paused": paused,
    }
    with client_session(server, token) as client:
        created = client.create_schedule(body)
    _print_one(created, as_json)


def _job(
    command: list[str],
    job_json: str | None,
    labels: list[str],
    priority: str | None,
    timeout: int | None,
) -> dict[str, Any]:
    if job_json is not None:
        if command:
            fail("give either a command after -- or --job-json, not both", 2)
        try:
            given = json.loads(job_json)
        except ValueError as exc:
            fail(f"--job-json is not JSON: {exc}", 2)
        if not isinstance(given, dict):
            fail("--job-json must be a JSON object", 2)
        return given
    if not command:
        fail("give the job's command after --, or --job-json", 2)
    fields: dict[str, Any] = {"command": shlex.join(command), "labels": labels}
    fields.update(priority=priority, timeout=timeout)
    return {k: v for k, v in fields.items() if v not in (None, [])}


@schedule_app.command("list")
def list_schedules(
    as_json: bool = JsonOpt, server: str | None = ServerOpt, token: str | None = TokenOpt
) -> None:
    """Every schedule with its next run and last job."""
    with client_session(server, token) as client:
        rows = client.schedules()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = [_row(s) for s in rows]
    columns = ("id", "name", "cron", "timezone", "state", "next_run", "last_job", "last_status")
    print_rows(table, columns, False, "Schedules")


def _row(s: dict[str, Any]) -> dict[str, Any]:
    last = s["last_jobs"][0] if s["last_jobs"] else {}
    return {
        **s,
        "state": "paused" if s["paused"] else "active",
        "next_run": s["next_runs"][0] if s["next_runs"] else None,
        "last_job": last.get("id"),
        "last_status": last.get("status"),
    }


@schedule_app.command("show")
def show(
    schedule_id: str,
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """One schedule: its fields, next runs and last jobs."""
    with client_session(server, token) as client:
        _print_one(client.schedule(schedule_id), as_json)


@schedule_app.command("pause")
def pause(schedule_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Stop firing until resumed (owner or admin)."""
    with client_session(server, token) as client:
        client.update_schedule(schedule_id, paused=True)
    typer.echo(f"{schedule_id} paused")


@schedule_app.command("resume")
def resume(schedule_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Fire again from the next tick; ticks during the pause are not caught up."""
    with client_session(server, token) as client:
        answer = client.update_schedule(schedule_id, paused=False)
    upcoming = answer["next_runs"][0] if answer["next_runs"] else "-"
    typer.echo(f"{schedule_id} resumed; next run {upcoming}")


@schedule_app.command("delete")
def delete(schedule_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Delete a schedule (owner or admin); the jobs it fired stay."""
    with client_session(server, token) as client:
        client.delete_schedule(schedule_id)
    typer.echo(f"{schedule_id} deleted")


def _print_one(s: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(s))
        return
    job = s["job"]
    what = job.get("command") or job.get("binary_url") or job.get("instructions")
    lines = [
        ("id", s["id"]),
        ("name", s["name"]),
        ("cron", f"{s['cron']} ({s['timezone']})"),
        ("state", "paused" if s["paused"] else "active"),
        ("overlap", s["overlap"]),
        ("catch_up", s["catch_up"]),
        ("jitter", f"{s['jitter_seconds']}s"),
        ("job", what),
    ]
    for key, value in lines:
        typer.echo(f"{key:10} {value}")
    for run in s["next_runs"]:
        typer.echo(f"{'next':10} {run}")
    for fired in s["last_jobs"]:
        typer.echo(f"{'fired':10} {fired['scheduled_for']} {fired['id']} {fired['status']}")
