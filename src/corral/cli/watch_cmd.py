"""`corral watch`: a live view of many jobs until they have all finished.

On a terminal it is one rich table redrawn in place with a progress bar; when
stdout is not a terminal it prints one line per status change, so a script or
a CI log reads the same story without escape codes.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.common import TERMINAL, ServerOpt, TokenOpt, client_session
from corral.cli.job_ids import resolve, short

if TYPE_CHECKING:
    from corral.client.client import JsonClient

POLL_SECONDS = 0.5


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    job_ids: list[str] = typer.Argument(
        None, help="Jobs (ids or 8+ character prefixes) to watch (default: the latest ones)."
    ),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="How many latest jobs."),
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Follow the status of many jobs live; exit non-zero if any of them failed."""
    with client_session(server, token) as client:
        ids = [resolve(client, i) for i in job_ids] if job_ids else []
        ids = ids or [row["id"] for row in client.list(limit=limit)]
        if not ids:
            typer.echo("no jobs")
            return
        final = _live(client, ids) if sys.stdout.isatty() else _plain(client, ids)
    failed = [j for j in final if j["status"] != "completed"]
    raise typer.Exit(1 if failed else 0)


def _snapshot(client: JsonClient, ids: list[str]) -> list[dict[str, Any]]:
    return [client.get(job_id) for job_id in ids]


def _plain(client: JsonClient, ids: list[str]) -> list[dict[str, Any]]:
    seen: dict[str, str] = {}
    while True:
        jobs = _snapshot(client, ids)
        for job in jobs:
            if seen.get(job["id"]) != job["status"]:
                seen[job["id"]] = job["status"]
                typer.echo(f"{job['id']}\t{job['status']}\t{_exit(job)}")
        if all(j["status"] in TERMINAL for j in jobs):
            return jobs
        time.sleep(POLL_SECONDS)


def _live(client: JsonClient, ids: list[str]) -> list[dict[str, Any]]:
    from rich.console import Group
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    progress = Progress(TextColumn("jobs"), BarColumn(), MofNCompleteColumn())
    bar = progress.add_task("jobs", total=len(ids))
    with Live(refresh_per_second=4) as live:
        while True:
            jobs = _snapshot(client, ids)
            done = sum(j["status"] in TERMINAL for j in jobs)
            progress.update(bar, completed=done)
            live.update(Group(_table(jobs), progress))
            if done == len(jobs):
                return jobs
            time.sleep(POLL_SECONDS)


def _table(jobs: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    counts = Counter(j["status"] for j in jobs)
    title = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    table = Table(title=title)
    for column in ("id", "status", "executor", "exit", "command"):
        table.add_column(column)
    for job in jobs:
        table.add_row(
            short(job["id"]),
            job["status"],
            job.get("executor_id") or "-",
            _exit(job),
            job.get("command") or job.get("binary_url") or "-",
        )
    return table


def _exit(job: dict[str, Any]) -> str:
    code = job.get("exit_code")
    return "-" if code is None else str(code)
