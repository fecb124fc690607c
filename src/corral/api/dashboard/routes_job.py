"""``/jobs/{id}``: one job's facts, attempts, output and artifacts, and its cancel and
resubmit forms.

The facts, controls, attempts and artifacts are one live fragment
(``?fragment=status``) re-fetched when a job changes state; the output is followed
by ``app.js`` on the API's own stream, so this page never polls. Secret env values
are masked before a template sees the job.

Output can be long (up to the server's cap per stream), and a browser renders a
megabyte of coloured spans slowly: the page shows the last ``TAIL`` bytes of each
stream, with a link to ``/jobs/{id}/output/{stream}``, which downloads it whole.
ANSI colours become classes (``ansi.py``).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.content_disposition import attachment
from corral.api.dashboard import ansi
from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, Viewer, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.domain.env import MASK, masked
from corral.domain.files import StoredFile
from corral.domain.jobs import Job
from corral.domain.leases import attempts_spent
from corral.domain.priority import level
from corral.domain.retry import RetryPolicy, describe_retries
from corral.domain.states import JobStatus
from corral.errors import InvalidInput, NotFound
from corral.services.container import Services
from corral.services.jobs import JobDetails
from corral.store.leases_port import OutputSlice

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FRAGMENTS = {"status": "_job_status.html"}
CANCELLABLE = (JobStatus.PENDING, JobStatus.RUNNING)
STREAMS = ("stdout", "stderr")
TAIL = 64 * 1024  # bytes of each stream shown on the page; the rest is a download


def job_url(job_id: str) -> str:
    return f"/jobs/{quote(job_id, safe='')}"


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request,
    job_id: str,
    viewer: ViewerDep,
    services: ServicesDep,
    fragment: str | None = None,
) -> Response:
    if fragment is not None and fragment not in FRAGMENTS:
        raise InvalidInput(f"unknown fragment: {fragment}", field="fragment")
    details = await services.jobs.details(viewer.principal, job_id, with_output=False)
    artifacts = await services.files.artifacts(viewer.principal, job_id)
    context = _context(viewer, details, artifacts, services.settings.output_cap)
    owners = await services.owners.names(viewer.principal, [details.job.owner_id])
    context["owner"] = owners.get(details.job.owner_id, details.job.owner_id)
    context["project_name"] = await _project_name(services, viewer, details.job.project_id)
    # The live fragment shows where the job stands, not its output: skip reading that.
    context["streams"] = [] if fragment else await _tails(services, viewer, details.job)
    reasons = await services.placement.reasons([details.job])
    context["pending_reason"] = reasons.get(job_id)
    if details.job.run_if is not None or details.job.has_dependants:  # issue 15
        context["dependencies"] = await services.workflows.dependencies(viewer.principal, job_id)
    template = FRAGMENTS[fragment] if fragment else "job.html"
    return TEMPLATES.TemplateResponse(request, template, context)


def _context(
    viewer: Viewer, details: JobDetails, artifacts: list[StoredFile], cap: int
) -> dict[str, Any]:
    """Everything the page shows. The job goes in with its secret values already masked,
    so no template, now or later, can print one by mistake."""
    job = _masked(details.job)
    running = job.status == JobStatus.RUNNING
    return {
        "viewer": viewer,
        "nav": "jobs",
        "job": job,
        "url": job_url(job.id),
        "priority": level(job.priority),
        "env": sorted(job.spec.env.items()),
        "secret_names": sorted(job.spec.secret_env),
        "mask": MASK,
        "attempts": details.attempts,
        "retries": describe_retries(
            job.max_retries, job.spec.retry_on_failure, attempts_spent(job), RetryPolicy()
        ),
        "renewed_at": _renewed_at(job) if running else None,
        "artifacts": artifacts,
        "cap": cap,
        "tail_kib": TAIL // 1024,
        "following": not job.terminal,
        "can_cancel": job.status in CANCELLABLE and viewer.can_cancel(job.owner_id),
        "can_resubmit": viewer.can_submit and viewer.can_cancel(job.owner_id),
    }


async def _project_name(services: Services, viewer: Viewer, project_id: str | None) -> str | None:
    """The job's project by name; None when it has none, or the project was deleted."""
    if project_id is None:
        return None
    try:
        view = await services.projects.get_project(viewer.principal, project_id)
    except NotFound:
        return None
    return view.project.name


async def _tails(services: Services, viewer: Viewer, job: Job) -> list[dict[str, Any]]:
    """The end of each stream, read from where the last ``TAIL`` bytes start."""
    tails = []
    for name, state in (("stdout", job.stdout), ("stderr", job.stderr)):
        start = max(0, state.size - TAIL)
        piece, _ = await services.output.read(viewer.principal, job.id, name, start, TAIL)
        tails.append(_tail(name, piece, state.truncated))
    return tails


def _tail(name: str, piece: OutputSlice, truncated: bool) -> dict[str, Any]:
    text = piece.data.decode(errors="replace")
    return {
        "name": name,
        "segments": ansi.segments(text),
        "offset": piece.offset + len(piece.data),  # where following picks up, in bytes
        "hidden": piece.offset,  # bytes before the tail, only in the download
        "truncated": truncated,
    }


@router.get("/jobs/{job_id}/output/{stream}")
async def download_output(
    job_id: str, stream: str, viewer: ViewerDep, services: ServicesDep
) -> Response:
    """The whole stored stream as a text file, escapes and all, as the job wrote it."""
    if stream not in STREAMS:
        raise NotFound(f"no output stream {stream!r}: stdout or stderr")
    chunks: list[bytes] = []
    while True:  # the stored stream is bounded by the output cap (and its loss notes)
        at = sum(map(len, chunks))
        piece, _ = await services.output.read(viewer.principal, job_id, stream, at, 1 << 20)
        if not piece.data:
            break
        chunks.append(piece.data)
    name = f"job-{job_id[:8]}-{stream}.txt"
    headers = {"Content-Disposition": attachment(name)}
    return Response(b"".join(chunks), media_type="text/plain; charset=utf-8", headers=headers)


def _masked(job: Job) -> Job:
    spec = dataclasses.replace(job.spec, secret_env=masked(job.spec.secret_env))
    return dataclasses.replace(job, spec=spec)


def _renewed_at(job: Job) -> float | None:
    """When the running attempt last renewed its lease: every renewal (a heartbeat)
    moves the expiry to ``now + lease_seconds``, and no heartbeat is stored one by one."""
    if job.lease_expires_at is None or job.started_at is None:
        return None
    renewed = job.lease_expires_at - job.lease_seconds
    return renewed if renewed > job.started_at + 0.5 else None


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    await services.jobs.cancel(viewer.principal, job_id)
    return RedirectResponse(job_url(job_id), status_code=303)


@router.post("/jobs/{job_id}/resubmit")
async def resubmit(job_id: str, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    fresh = await services.jobs.resubmit(viewer.principal, job_id)
    return RedirectResponse(job_url(fresh.id), status_code=303)
