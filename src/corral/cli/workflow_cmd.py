"""`corral workflow run|status|list|cancel`: a graph of jobs from a YAML or JSON file.

The file is the document ``POST /api/v1/workflows`` takes (docs/workflows.md), so a
workflow kept in a repository runs the same from the CLI, the SDK or curl.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from corral.cli.common import TERMINAL, JsonOpt, ServerOpt, TokenOpt, client_session, print_rows
from corral.cli.config import fail
from corral.cli.files_cmd import artifacts

if TYPE_CHECKING:
    from corral.client.client import JsonClient

POLL_SECONDS = 0.5
workflow_app = typer.Typer(help="Workflows: graphs of jobs that wait for each other.")


def register(app: typer.Typer) -> None:
    app.add_typer(workflow_app, name="workflow")


def load_document(path: Path) -> dict[str, Any]:
    """The file's workflow document; YAML for .yaml/.yml, else JSON."""
    import yaml  # only this command needs it

    try:
        text = path.read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    try:
        yaml_file = path.suffix.lower() in (".yaml", ".yml")
        document = yaml.safe_load(text) if yaml_file else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:  # json's errors are ValueErrors
        fail(f"{path} is not a valid workflow file: {exc}")
    if not isinstance(document, dict):
        fail(f"{path}: a workflow is a mapping with 'name' and 'jobs'")
    if "name" not in document:
        document["name"] = path.stem
    return document


@workflow_app.command("run")
def run(
    file: Path = typer.Argument(..., help="A .yaml, .yml or .json workflow document."),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Show progress until it ends; exit 0 only if it completed."
    ),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", help="Submit at most once under this key."
    ),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Submit a workflow file whole (all its jobs or none) and print its id."""
    document = load_document(file)
    with client_session(server, token) as client:
        created = client.submit_workflow(document, idempotency_key=idempotency_key)
        if as_json and not follow:
            typer.echo(json.dumps(created))
            return
        typer.echo(created["id"], err=follow)
        if follow:
            raise typer.Exit(_follow(client, created["id"], as_json))


@workflow_app.command("status")
def status(
    workflow_id: str,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Print each change until it ends; exit 0 if it completed."
    ),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """Show a workflow: its status and each job's."""
    with client_session(server, token) as client:
        if follow:
            raise typer.Exit(_follow(client, workflow_id, as_json))
        shown = client.workflow(workflow_id)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    _print(shown)


@workflow_app.command("list")
def list_workflows(
    limit: int = typer.Option(50, "--limit", min=1, max=200),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """List workflows, newest first."""
    with client_session(server, token) as client:
        rows = client.workflows(limit)
    print_rows(rows, ("id", "name", "status", "counts", "created_at"), as_json, "Workflows")


@workflow_app.command("cancel")
def cancel(workflow_id: str, server: str | None = ServerOpt, token: str | None = TokenOpt) -> None:
    """Cancel every job of the workflow that has not finished."""
    with client_session(server, token) as client:
        shown = client.cancel_workflow(workflow_id)
    _print(shown)


@workflow_app.command("parents")
def parents(
    job_id: str = typer.Argument(..., help='A job id; inside a job, "$CORRAL_JOB_ID".'),
    download: Path | None = typer.Option(
        None, "--download", "-d", file_okay=False, help="Save each one's artifacts in DIR/ID/."
    ),
    as_json: bool = JsonOpt,
    server: str | None = ServerOpt,
    token: str | None = TokenOpt,
) -> None:
    """The jobs JOB_ID waits for, with their status and `result`; --download fetches
    their artifacts (what a dependant runs to get its parents' outputs)."""
    with client_session(server, token) as client:
        found = client.dependencies(job_id)["depends_on"]
    if download is None:
        print_rows(found, ("id", "status", "exit_code", "result"), as_json, "Depends on")
        return
    for parent in found:
        artifacts(parent["id"], download / parent["id"], as_json, server, token)


def _print(shown: dict[str, Any]) -> None:
    typer.echo(f"{shown['id']}  {shown['name']}  {shown['status']}")
    for job in shown["jobs"]:
        typer.echo(_job_line(job))


def _job_line(job: dict[str, Any]) -> str:
    state = "blocked" if job["blocked"] else job["status"]
    after = f"  after {', '.join(job['depends_on'])}" if job["depends_on"] else ""
    why = f"  ({job['error_message']})" if job.get("error_message") else ""
    return f"  {job['key']:20} {state:10} {job['id']}{after}{why}"


def _follow(client: JsonClient, workflow_id: str, as_json: bool) -> int:
    """One line per job status change until every job has ended; 0 if it completed."""
    seen: dict[str, str] = {}
    while True:
        shown = client.workflow(workflow_id)
        for job in shown["jobs"]:
            state = "blocked" if job["blocked"] else job["status"]
            if seen.get(job["key"]) != state:
                seen[job["key"]] = state
                if not as_json:
                    typer.echo(_job_line(job))
        if shown["status"] in TERMINAL:
            if as_json:
                typer.echo(json.dumps(shown))
            else:
                typer.echo(f"workflow {shown['status']}")
            sys.stdout.flush()
            return 0 if shown["status"] == "completed" else 1
        time.sleep(POLL_SECONDS)
