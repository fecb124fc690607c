"""`corral worker`: run the agent against a dispatcher until SIGTERM drains it."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from corral.agent.levels import CHOICES, DEFAULT_UID_RANGE, Level
from corral.cli.config import fail, resolve_credentials
from corral.cli.logs import LogFormatOpt, setup_logging

if TYPE_CHECKING:
    from corral.agent.agent import AgentConfig
    from corral.agent.isolation import Choice

log = logging.getLogger("corral.worker")


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    server: str | None = typer.Option(
        None,
        envvar=["CORRAL_SERVER", "CORRAL_URL"],
        help="Dispatcher URL, or replicas' URLs comma-separated: the first is used while "
        "it answers, then the next (leases and outcomes carry over).",
    ),
    token: str | None = typer.Option(
        None,
        envvar="CORRAL_TOKEN",
        help="A worker token (visible in this process's argv: prefer --token-file).",
    ),
    token_file: Path | None = typer.Option(
        None,
        "--token-file",
        envvar="CORRAL_TOKEN_FILE",
        help="Read the worker token from this file (mode 0600: jobs must not read it).",
    ),
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
    isolation: str = typer.Option(
        "auto",
        envvar="CORRAL_ISOLATION",
        help=f"How jobs are kept apart: {'|'.join(CHOICES)}; auto is the strongest the "
        "machine allows (docs/isolation.md).",
    ),
    uid_range: str = typer.Option(
        DEFAULT_UID_RANGE,
        envvar="CORRAL_UID_RANGE",
        help="Uids (and gids) given to running jobs at user/sandbox isolation; no passwd "
        "entries needed, never the worker's own.",
    ),
    cgroup_favordynmods: bool = typer.Option(
        True,
        "--cgroup-favordynmods/--no-cgroup-favordynmods",
        envvar="CORRAL_CGROUP_FAVORDYNMODS",
        help="At start, remount cgroup v2 with favordynmods when it lacks it (root, Linux "
        "6.0+): a job's cgroup join then skips an RCU grace period, milliseconds per job "
        "start (docs/isolation.md).",
    ),
    log_level: str = typer.Option("info", envvar="CORRAL_LOG_LEVEL"),
    log_format: str = LogFormatOpt,
) -> None:
    """Claim jobs from the dispatcher and run them; SIGTERM drains, a second SIGTERM kills."""
    import asyncio

    from corral.agent.agent import AgentConfig
    from corral.agent.limits import LimitPolicy

    url, secret = resolve_credentials(server, token or _read_token(token_file))
    os.environ.pop("CORRAL_TOKEN", None)  # never handed down, whatever a job's env says
    setup_logging(log_level, log_format)
    choice, uids = _isolation(isolation, uid_range, concurrency, token_file)
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
        isolation=choice.level,
        uid_range=uids,
        cgroup_favordynmods=cgroup_favordynmods,
    )
    raise typer.Exit(asyncio.run(_run(config)))


async def _run(config: AgentConfig) -> int:
    """The agent is built inside the loop it will run on."""
    from corral.agent.agent import Agent
    from corral.agent.workdir import WorkDirBusy

    try:
        agent = Agent(config)
    except WorkDirBusy as exc:
        fail(str(exc))
    # Start-up's objects live as long as the process: out of the collector's sight, a
    # full collection scans only what came after (docs/performance.md, "Garbage
    # collection"), and stalls the loop that reads every job's pipes for less.
    gc.freeze()
    return await agent.run()


def _read_token(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().strip() or fail(f"token file {path} is empty")
    except OSError as exc:
        fail(f"cannot read token file {path}: {exc.strerror or exc}")


def _isolation(
    requested: str, uid_range: str, concurrency: int, token_file: Path | None
) -> tuple[Choice, range]:
    """The level this worker runs at, logged with why; refuses what cannot be kept."""
    from corral.agent.isolation import (
        IsolationUnavailable,
        choose,
        parse_uid_range,
        readable_by_others,
    )

    try:
        choice = choose(requested)
        uids = parse_uid_range(uid_range)
    except IsolationUnavailable as exc:
        fail(str(exc))
    if choice.level is not Level.NONE:
        if len(uids) < concurrency:
            fail(f"--uid-range {uid_range} has fewer uids than --concurrency {concurrency}")
        if token_file is not None and readable_by_others(token_file):
            fail(f"token file {token_file} is readable by other users: chmod 600 it")
    if choice.level is Level.USER and any(a.split("=")[0] == "--token" for a in sys.argv):
        log.warning(  # a sandboxed job has its own /proc; at user level it sees our argv
            "the worker's argv is readable by every job: pass the token with --token-file",
            extra={"action": "token_in_argv"},
        )
    extra = {"action": "isolation_level", "level": str(choice.level), "reason": choice.reason}
    if choice.level is Level.NONE:
        log.warning(
            "isolation none: jobs run as the worker's user and can read its token, "
            "its cache and each other",
            extra=extra,
        )
    else:
        log.info("isolation %s: %s", choice.level, choice.reason, extra=extra)
    return choice, uids
