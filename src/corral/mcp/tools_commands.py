"""Corral's own tools for a command fleet: run a shell command on a worker, wait for
it, read its output, cancel it, and look at the jobs and workers.

Jobs are shown as the native API shows them (``api/native/render``): secret
values stay masked. ``wait_for_job`` and ``tail_output`` are bounded (60 s, 64 KiB)
so an agent never spins or floods its own context.
"""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer

from corral.api.native import render
from corral.api.native.schemas import ResourceRequest, SubmitJob
from corral.domain.states import JobStatus
from corral.errors import InvalidInput
from corral.mcp.arguments import JobId
from corral.mcp.caller import caller
from corral.mcp.failures import tool_errors
from corral.mcp.results import dump
from corral.services.container import Services
from corral.store.base import JobFilter

MAX_WAIT = 60.0
MAX_TAIL_BYTES = 65536
DEFAULT_TAIL_BYTES = 16384
MAX_TAIL_LINES = 1000
MAX_LIST = 100


def register(server: MCPServer, services: Services) -> None:
    jobs = services.jobs

    @server.tool(structured_output=False)
    async def submit_command(
        command: str,
        ctx: Context,
        labels: list[str] | None = None,
        timeout: int = 3600,  # noqa: ASYNC109 (the tool's argument: the job's time limit)
        env: dict[str, str] | None = None,
        resources: dict[str, Any] | None = None,
        retention_days: int | None = None,
    ) -> str:
        """Run a shell command on a Corral worker. labels pick the workers that may run it
        (all must match); timeout in seconds; env adds environment variables;
        resources: {cpus, memory_mb, pids}; retention_days: days the job is kept once
        finished (0 to 36500, 0 for ever; default the server's). Returns the job id:
        follow it with wait_for_job and tail_output."""
        with tool_errors():
            body = SubmitJob.model_validate(
                {
                    "command": command,
                    "labels": labels or [],
                    "timeout": timeout,
                    "env_variables": env or {},
                    "resources": ResourceRequest.model_validate(resources) if resources else None,
                    "retention_days": retention_days,
                }
            )
            submitted = await jobs.submit(caller(ctx).principal, [body.to_draft()])
            return dump(render.summary(submitted.jobs[0]))

    @server.tool(structured_output=False)
    async def get_job(jobId: JobId, ctx: Context) -> str:
        """Everything about a job (status, exit code, attempts, error) but its output:
        read that with tail_output."""
        with tool_errors():
            details = await jobs.details(caller(ctx).principal, jobId, with_output=False)
            body = render.job_body(details.job)
            return dump({**body, "attempts": [render.attempt(a) for a in details.attempts]})

    @server.tool(structured_output=False)
    async def wait_for_job(jobId: JobId, ctx: Context, timeout: float = 30) -> str:  # noqa: ASYNC109
        """Wait until a job finishes, up to timeout seconds (at most 60). Returns at once
        when it finishes, else the status so far (finished: false): call it again
        rather than polling get_job."""
        with tool_errors():
            if not 0 <= timeout <= MAX_WAIT:
                raise InvalidInput("timeout must be between 0 and 60 seconds", field="timeout")
            job = await services.output.wait(caller(ctx).principal, jobId, timeout)
            return dump({**render.summary(job), "finished": job.terminal})

    @server.tool(structured_output=False)
    async def tail_output(
        jobId: JobId,
        ctx: Context,
        stream: Literal["stdout", "stderr"] = "stdout",
        lines: int | None = 50,
        offset: int | None = None,
        maxBytes: int = DEFAULT_TAIL_BYTES,
    ) -> str:
        """A job's output: the last `lines` lines (default 50), or the bytes from `offset`
        on (then `nextOffset` continues). At most maxBytes (64 KiB) per call."""
        with tool_errors():
            return dump(await _tail(services, caller(ctx), jobId, stream, lines, offset, maxBytes))

    @server.tool(structured_output=False)
    async def cancel_job(jobId: JobId, ctx: Context) -> str:
        """Cancel a job: a pending one never starts, a running one is stopped."""
        with tool_errors():
            job = await jobs.cancel(caller(ctx).principal, jobId)
            return dump(render.summary(job))

    @server.tool(structured_output=False)
    async def list_jobs(
        ctx: Context,
        status: Literal["pending", "running", "completed", "failed", "cancelled"] | None = None,
        mine: bool = False,
        limit: int = 20,
        offset: int = 0,
    ) -> str:
        """Recent jobs, newest first, optionally by status or only the ones this token
        submitted (mine): to find a job's id again."""
        with tool_errors():
            if not 1 <= limit <= MAX_LIST or offset < 0:
                raise InvalidInput(f"limit must be 1-{MAX_LIST}, offset at least 0", field="limit")
            principal = caller(ctx).principal
            flt = JobFilter(
                status=JobStatus(status) if status else None,
                owner_id=principal.id if mine else None,
            )
            found, total = await jobs.list_jobs(principal, flt, limit, offset)
            return dump({"jobs": [render.summary(j) for j in found], "total": total})

    @server.tool(structured_output=False)
    async def list_workers(ctx: Context, activeOnly: bool = False) -> str:
        """The workers of the fleet: state, labels, capacity and what they run now, to
        choose labels for submit_command."""
        with tool_errors():
            views = await services.executors.views(caller(ctx).principal, activeOnly)
            return dump([render.executor(v) for v in views])


async def _tail(
    services: Services,
    who: Any,
    job_id: str,
    stream: str,
    lines: int | None,
    offset: int | None,
    max_bytes: int,
) -> dict[str, Any]:
    if not 1 <= max_bytes <= MAX_TAIL_BYTES:
        raise InvalidInput(f"maxBytes must be 1-{MAX_TAIL_BYTES}", field="maxBytes")
    if lines is not None and not 1 <= lines <= MAX_TAIL_LINES:
        raise InvalidInput(f"lines must be 1-{MAX_TAIL_LINES}", field="lines")
    output = services.output
    if offset is not None:
        if offset < 0:
            raise InvalidInput("offset must be at least 0", field="offset")
        piece, job = await output.read(who.principal, job_id, stream, offset, max_bytes)
        text = piece.data.decode(errors="replace")
        start = piece.offset
    else:
        probe, job = await output.read(who.principal, job_id, stream, 0, 0)
        start = max(0, probe.size - max_bytes)
        piece, job = await output.read(who.principal, job_id, stream, start, max_bytes)
        text = piece.data.decode(errors="replace")
        if lines is not None:
            kept = text.splitlines(keepends=True)[-lines:]
            text = "".join(kept)
            start = piece.offset + len(piece.data) - len(text.encode(errors="replace"))
    return {
        "jobId": job_id,
        "stream": stream,
        "status": job.status.value,
        "text": text,
        "offset": start,
        "nextOffset": piece.offset + len(piece.data),
        "size": piece.size,
        "truncated": piece.truncated,
    }
