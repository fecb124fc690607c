"""CMD Executor's ``/api/jobs``: submit, status and list for users; get-job,
stream-output and submit-result for workers.

A worker names no attempt: its token's executor and the lease it holds are the
fence, so a worker presumed dead cannot overwrite the run that replaced it.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.dialects.cmd import render
from corral.api.dialects.cmd.errors import CmdRoute
from corral.api.dialects.cmd.schemas import OutputBody, ResultBody, SubmitBody
from corral.api.longpoll import watched
from corral.api.ranges import COUNT
from corral.api.responses import JSON
from corral.api.status_names import parse_status
from corral.api.timefmt import iso
from corral.domain.jobs import Job, JobDraft, JobSpec, Outcome, Resources
from corral.domain.principals import Principal
from corral.domain.priority import parse_priority
from corral.domain.states import JobStatus
from corral.errors import InvalidInput
from corral.store.base import JobFilter

router = APIRouter(prefix="/api/jobs", route_class=CmdRoute, tags=["cmd-executor"])

MAX_PAGE = 1000
MAX_WAIT = 30.0
SORTS = {"createdAt": False, "-createdAt": True}
# The core's names for the fields this dialect spells differently, for error details.
CORE_FIELDS = {
    "working_directory": "workingDirectory",
    "max_retries": "maxRetries",
    "secret_env": "secretEnv",
}
# Where an uploaded file can be named from: /uploads/<id>/<name> (what upload
# answers), /api/files/download/<id>, either behind any origin, or the bare id.
_FILE_URL = re.compile(
    r"^(?:https?://[^/]+)?/(?:uploads|api/files/download)/(?P<id>[A-Za-z0-9_-]{1,100})(?:/.*)?$"
)
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def _resources(body: SubmitBody) -> Resources | None:
    if body.required_cpu is None and body.required_ram_mb is None:
        return None
    return Resources(cpus=body.required_cpu, memory_mb=body.required_ram_mb)


@router.post("/submit", status_code=201)
async def submit(body: SubmitBody, principal: PrincipalDep, services: ServicesDep) -> JSON:
    spec = JobSpec(
        command=body.command,
        env=body.env,
        secret_env=body.secret_env,
        working_directory=body.working_directory,
        input_file_id=_file_id(body.file_url) if body.file_url else None,
        timeout=body.timeout,
        labels=tuple(body.labels),
        resources=_resources(body),
    )
    priority = parse_priority(body.priority)
    draft = JobDraft(spec=spec, priority=priority, max_retries=body.max_retries)
    try:
        submitted = await services.jobs.submit(principal, [draft])
    except InvalidInput as exc:
        field = exc.context.get("field")
        if field == "input_file_id":
            raise InvalidInput("fileUrl names no uploaded file", field="fileUrl") from None
        if field in CORE_FIELDS:
            context = {**exc.context, "field": CORE_FIELDS[field]}
            raise InvalidInput(exc.message, **context) from None
        raise
    job = submitted.jobs[0]
    wait = await services.wait_estimate.seconds(job.priority)
    answer = {
        "success": True,
        "jobId": job.id,
        "status": render.job_status(job),
        "createdAt": iso(job.created_at),
        "estimatedWaitTime": wait,
    }
    return JSON(answer, status_code=201)


def _file_id(file_url: str) -> str:
    found = _FILE_URL.match(file_url)
    if found:
        return found["id"]
    if _FILE_ID.match(file_url):
        return file_url
    raise InvalidInput(
        "fileUrl must be the url (or fileId) that /api/files/upload answered", field="fileUrl"
    )


@router.get("/get-job", response_model=None)
async def get_job(
    request: Request,
    principal: PrincipalDep,
    services: ServicesDep,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT)] = 0.0,
) -> JSON | Response:
    """The next command for the calling worker, or 204; ``wait`` long-polls (extension)."""
    claim = await services.executors.claim_request(principal, limit=1)

    async with watched(request) as caller:
        jobs = await services.leases.claim(
            principal, claim, wait, still_wanted=caller.there, gone=caller.gone
        )
    if not jobs:
        return Response(status_code=204)
    return JSON({"success": True, "job": _assignment(jobs[0], request)})


def _assignment(job: Job, request: Request) -> dict[str, object]:
    spec = job.spec
    file_url = None
    if spec.input_file_id:
        file_url = f"{str(request.base_url).rstrip('/')}/api/files/download/{spec.input_file_id}"
    return {
        "jobId": job.id,
        "command": spec.command,
        "fileUrl": file_url,
        "workingDirectory": spec.working_directory,
        "timeout": spec.timeout,
        "env": {**spec.env, **spec.secret_env},  # the worker holding the lease needs them
        "priority": render.LEVELS.get(job.priority),
        "attempt": job.attempt,
        # What the job may use (extension): the limits the worker should apply.
        "requiredCpu": spec.resources.cpus if spec.resources else None,
        "requiredRamMb": spec.resources.memory_mb if spec.resources else None,
    }


@router.get("/status")
async def status(
    principal: PrincipalDep,
    services: ServicesDep,
    job_id: Annotated[str | None, Query(alias="jobId")] = None,
) -> JSON:
    if not job_id:
        raise InvalidInput("jobId is required", field="jobId")
    details = await services.jobs.details(principal, job_id)
    return JSON({"success": True, "job": render.job_detail(details)})


@router.get("/list")
async def list_jobs(
    principal: PrincipalDep,
    services: ServicesDep,
    status: str | None = None,
    worker_id: Annotated[str | None, Query(alias="workerId")] = None,
    sort: str = "-createdAt",
    limit: Annotated[int, Query(ge=1, le=COUNT)] = 100,
    offset: Annotated[int, Query(ge=0, le=COUNT)] = 0,
) -> JSON:
    if sort not in SORTS:
        raise InvalidInput("sort must be createdAt or -createdAt", field="sort")
    flt = JobFilter(status=parse_status(status), executor_id=worker_id)
    limit = min(limit, MAX_PAGE)
    jobs, total = await services.jobs.list_jobs(principal, flt, limit, offset, SORTS[sort])
    return render.page([render.job_summary(j) for j in jobs], "jobs", total, limit, offset)


@router.post("/submit-result")
async def submit_result(body: ResultBody, principal: PrincipalDep, services: ServicesDep) -> JSON:
    if body.exit_code is None and body.error is None:
        raise InvalidInput("exitCode is required", field="exitCode")
    succeeded = body.exit_code == 0 and body.error is None
    outcome = Outcome(
        status=JobStatus.COMPLETED if succeeded else JobStatus.FAILED,
        exit_code=body.exit_code,
        error_message=body.error or (None if succeeded else f"exit code {body.exit_code}"),
        result=body.result,
    )
    output = {"stdout": body.stdout, "stderr": body.stderr}
    executor_id = _executor(principal, body.worker_id)
    await services.reports.finish(principal, body.job_id, executor_id, outcome, output)
    return JSON({"success": True, "message": "Result saved", "jobId": body.job_id})


@router.post("/stream-output")
async def stream_output(body: OutputBody, principal: PrincipalDep, services: ServicesDep) -> JSON:
    executor_id = _executor(principal, body.worker_id)
    await services.reports.stream(principal, body.job_id, executor_id, body.type, body.data)
    return JSON({"success": True, "received": True})


def _executor(principal: Principal, worker_id: str | None) -> str:
    """The worker a call speaks for: its token's, or (for admins) the one it names."""
    executor_id = worker_id or principal.executor_id
    if executor_id is None:
        raise InvalidInput("workerId is required", field="workerId")
    return executor_id
