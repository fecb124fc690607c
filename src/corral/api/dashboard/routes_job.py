"""``/jobs/{id}``: one job's facts, attempts, output and artifacts, and its cancel and
resubmit forms.

The facts, controls, attempts and artifacts are one live fragment
(``?fragment=status``) re-fetched when a job changes state; the output is followed
by ``app.js`` on the API's own stream, so this page never polls. Secret env values
are masked before a template sees the job.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, Viewer, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.domain.env import MASK, masked
from corral.domain.files import StoredFile
from corral.domain.jobs import Job
from corral.domain.priority import level
from corral.domain.states import JobStatus
from corral.errors import InvalidInput
from corral.services.jobs import JobDetails

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FRAGMENTS = {"status": "_job_status.html"}
CANCELLABLE = (JobStatus.PENDING, JobStatus.RUNNING)


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
    # The live fragment shows where the job stands, not its output: skip reading that.
    details = await services.jobs.details(viewer.principal, job_id, with_output=fragment is None)
    artifacts = await services.files.artifacts(viewer.principal, job_id)
    context = _context(viewer, details, artifacts, services.settings.output_cap)
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
        "renewed_at": _renewed_at(job) if running else None,
        "artifacts": artifacts,
        "streams": [
            ("stdout", details.stdout.decode(errors="replace"), len(details.stdout), job.stdout),
            ("stderr", details.stderr.decode(errors="replace"), len(details.stderr), job.stderr),
        ],
        "cap": cap,
        "following": not job.terminal,
        "can_cancel": job.status in CANCELLABLE and viewer.can_cancel(job.owner_id),
        "can_resubmit": viewer.can_submit and viewer.can_cancel(job.owner_id),
    }


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
