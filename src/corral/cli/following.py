"""Waiting for a job and copying its live output: shared by `submit` and `logs`."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.common import TERMINAL
from corral.client.events import EndEvent

if TYPE_CHECKING:
    from corral.client.client import JsonClient


def wait_for(client: JsonClient, job_id: str) -> dict[str, Any]:
    """Poll with a growing pause until the job is finished."""
    pause = 0.1
    said: str | None = None
    while True:
        job = client.get(job_id)
        if job["status"] in TERMINAL:
            return job
        if job.get("pending_reason") != said:
            said = say_why_pending(job)
        time.sleep(pause)
        pause = min(pause * 1.5, 2.0)


def say_why_pending(job: dict[str, Any]) -> str | None:
    """Tell the user on stderr why a job waits, when no online worker could take it."""
    reason = job.get("pending_reason") if job.get("status") == "pending" else None
    if reason:
        typer.echo(f"waiting: {reason}", err=True)
    return reason


def follow(client: JsonClient, job_id: str) -> dict[str, Any]:
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
    return wait_for(client, job_id)


def exit_status(job: dict[str, Any]) -> int:
    """The job's own exit code when it has one; otherwise 0 for success, 1 for anything else."""
    if job.get("error_message") and job["status"] != "completed":
        typer.echo(f"job {job['status']}: {job['error_message']}", err=True)
    code = job.get("exit_code")
    if isinstance(code, int):
        return code if 0 <= code <= 255 else 1
    return 0 if job["status"] == "completed" else 1
