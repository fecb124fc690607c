"""`corral worker`: run the agent against a dispatcher until SIGTERM drains it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import typer

from corral.agent.agent import Agent, AgentConfig
from corral.agent.cgroups import LimitPolicy
from corral.agent.executor import WorkDirBusy
from corral.cli.config import fail, resolve_credentials
from corral.cli.logs import setup_logging


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    server: str | None = typer.Option(
        None, envvar=["CORRAL_SERVER", "CORRAL_URL"], help="Dispatcher URL."
    ),
    token: str | None = typer.Option(None, envvar="CORRAL_TOKEN", help="A worker token."),
    concurrency: int = typer.Option(4, min=1, max=1000, envvar="CORRAL_CONCURRENCY"),
    labels: str = typer.Option("", envvar="CORRAL_LABELS", help="Comma-separated labels."),
    name: str | None = typer.Option(
        None, envvar="CORRAL_NAME", help="Executor id (default: hostname + random suffix)."
    ),
    work_dir: Path = typer.Option(
        Path("./corral-work"), envvar="CORRAL_WORK_DIR", help="Per-job directories and cache."
    ),
    drain_timeout: float = typer.Option(
        60.0,
        min=0,
        envvar="CORRAL_DRAIN_TIMEOUT",
        help="Seconds running jobs get on SIGTERM; the worker exits within this, the kill "
        "grace and 5 s more, even with the dispatcher unreachable.",
    ),
    grace: float = typer.Option(
        5.0,
        min=0,
        envvar="CORRAL_KILL_GRACE",
        help="Seconds a stopped job's processes get between SIGTERM and SIGKILL.",
    ),
    claim_wait: float = typer.Option(
        20.0, min=0, max=60, envvar="CORRAL_CLAIM_WAIT", help="Long-poll seconds per claim."
    ),
    prefetch: int | None = typer.Option(
        None,
        min=0,
        max=10000,
        envvar="CORRAL_PREFETCH",
        help="Jobs claimed ahead of a free slot (default: 4 x the concurrency); one claim "
        "asks for at most the server's claim limit (100).",
    ),
    allow_private_urls: bool = typer.Option(
        False,
        "--allow-private-urls",
        envvar="CORRAL_WORKER_ALLOW_PRIVATE_URLS",
        help="Let binary_url jobs download from loopback, link-local and private addresses.",
    ),
    cpus: float | None = typer.Option(
        None,
        min=0.01,
        envvar="CORRAL_WORKER_CPUS",
        help="CPUs offered to jobs that ask for resources (default: the machine's).",
    ),
    memory_mb: int | None = typer.Option(
        None,
        "--memory-mb",
        min=1,
        envvar="CORRAL_WORKER_MEMORY_MB",
        help="MiB of memory offered to jobs that ask for resources (default: the machine's).",
    ),
    default_memory_mb: int | None = typer.Option(
        None,
        min=1,
        envvar="CORRAL_DEFAULT_MEMORY_MB",
        help="Memory limit (MiB) of a job that asks for none; default: no limit.",
    ),
    max_memory_mb: int | None = typer.Option(
        None,
        min=1,
        envvar="CORRAL_MAX_MEMORY_MB",
        help="Most memory (MiB) a job may ask for; a job asking more fails here.",
    ),
    default_pids: int | None = typer.Option(
        None,
        min=1,
        envvar="CORRAL_DEFAULT_PIDS",
        help="Process limit of a job that asks for none; default: no limit.",
    ),
    max_pids: int | None = typer.Option(
        None, min=1, envvar="CORRAL_MAX_PIDS", help="Most processes a job may ask for."
    ),
    log_level: str = typer.Option("info", envvar="CORRAL_LOG_LEVEL"),
) -> None:
    """Claim jobs from the dispatcher and run them; SIGTERM drains, a second SIGTERM kills."""
    url, secret = resolve_credentials(server, token)
    setup_logging(log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise
    config = AgentConfig(
        server=url,
        token=secret,
        concurrency=concurrency,
        labels=tuple(label.strip() for label in labels.split(",") if label.strip()),
        name=name,
        work_dir=work_dir.resolve(),
        drain_timeout=drain_timeout,
        grace=grace,
        claim_wait=claim_wait,
        prefetch=prefetch,
        allow_private_urls=allow_private_urls,
        cpus=cpus,
        memory_mb=memory_mb,
        limits=LimitPolicy(default_memory_mb, max_memory_mb, default_pids, max_pids),
    )
    raise typer.Exit(asyncio.run(_run(config)))


async def _run(config: AgentConfig) -> int:
    """The agent is built inside the loop it will run on."""
    try:
        agent = Agent(config)
    except WorkDirBusy as exc:
        fail(str(exc))
    return await agent.run()
