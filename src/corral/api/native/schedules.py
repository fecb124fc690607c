"""Schedule routes: ``/api/v1/schedules`` create, list, show, change (PATCH), delete.

A schedule's ``job`` is validated exactly as a ``POST /api/v1/jobs`` body is (the
same schema, the same service checks), so a bad job is a 400 when the schedule
is made, never a failed tick later.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field

from corral.api.deps import PrincipalDep, ServicesDep
from corral.api.native.errors import NativeRoute
from corral.api.native.schemas import Body, SubmitJob
from corral.api.timefmt import iso
from corral.domain.env import masked
from corral.domain.jobs import Job, JobDraft
from corral.domain.priority import queue_class
from corral.domain.schedules import MAX_JITTER, MAX_NAME, CatchUp, Overlap
from corral.errors import InvalidInput
from corral.services.schedules import ScheduleChanges, ScheduleInput, ScheduleView

router = APIRouter(prefix="/api/v1", route_class=NativeRoute, tags=["schedules"])

OverlapName = Literal["allow", "skip", "cancel_previous"]
CatchUpName = Literal["none", "one"]


class NewSchedule(Body):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    cron: str = Field(
        min_length=1,
        max_length=200,
        description="5 fields, or 6 with a leading seconds field (`*/10 * * * * *`)",
    )
    timezone: str = Field(default="UTC", min_length=1, max_length=100, description="IANA zone")
    job: SubmitJob = Field(description="any body `POST /api/v1/jobs` accepts")
    overlap: OverlapName = "skip"
    catch_up: CatchUpName = "none"
    jitter_seconds: int = Field(default=0, ge=0, le=MAX_JITTER)
    paused: bool = False

    def to_input(self) -> ScheduleInput:
        return ScheduleInput(
            name=self.name,
            cron=self.cron,
            job=_draft(self.job),
            timezone=self.timezone,
            overlap=Overlap(self.overlap),
            catch_up=CatchUp(self.catch_up),
            jitter_seconds=self.jitter_seconds,
            paused=self.paused,
        )


class ScheduleUpdate(Body):
    """Only the fields given change; ``job`` replaces the whole job."""

    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME)
    cron: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, min_length=1, max_length=100)
    job: SubmitJob | None = None
    overlap: OverlapName | None = None
    catch_up: CatchUpName | None = None
    jitter_seconds: int | None = Field(default=None, ge=0, le=MAX_JITTER)
    paused: bool | None = None

    def to_changes(self) -> ScheduleChanges:
        return ScheduleChanges(
            name=self.name,
            cron=self.cron,
            timezone=self.timezone,
            job=_draft(self.job) if self.job is not None else None,
            overlap=Overlap(self.overlap) if self.overlap else None,
            catch_up=CatchUp(self.catch_up) if self.catch_up else None,
            jitter_seconds=self.jitter_seconds,
            paused=self.paused,
        )


def _draft(job: SubmitJob) -> JobDraft:
    """The submit's own conversion, its errors named under ``job.``."""
    try:
        return job.to_draft()
    except InvalidInput as exc:
        field = exc.context.get("field")
        context = {**exc.context, "field": f"job.{field}" if field else "job"}
        raise InvalidInput(f"job: {exc.message}", **context) from exc


@router.post("/schedules", status_code=201)
async def create_schedule(
    body: NewSchedule, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return render(await services.schedules.create(principal, body.to_input()))


@router.get("/schedules")
async def list_schedules(services: ServicesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    return [render(view) for view in await services.schedules.list(principal)]


@router.get("/schedules/{schedule_id}")
async def get_schedule(
    schedule_id: str, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return render(await services.schedules.get(principal, schedule_id))


@router.patch("/schedules/{schedule_id}")
async def update_schedule(
    schedule_id: str, body: ScheduleUpdate, services: ServicesDep, principal: PrincipalDep
) -> dict[str, Any]:
    return render(await services.schedules.update(principal, schedule_id, body.to_changes()))


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: str, services: ServicesDep, principal: PrincipalDep
) -> Response:
    await services.schedules.delete(principal, schedule_id)
    return Response(status_code=204)


def render(view: ScheduleView) -> dict[str, Any]:
    s = view.schedule
    return {
        "id": s.id,
        "name": s.name,
        "owner_id": s.owner_id,
        "cron": s.cron,
        "timezone": s.timezone,
        "job": job_body(s.job),
        "overlap": s.overlap.value,
        "catch_up": s.catch_up.value,
        "jitter_seconds": s.jitter_seconds,
        "paused": s.paused,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
        "next_runs": [iso(t) for t in view.upcoming],
        "last_jobs": [_fired(j) for j in view.last_jobs],
    }


def _fired(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "scheduled_for": iso(job.scheduled_for),
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "exit_code": job.exit_code,
    }


def job_body(draft: JobDraft) -> dict[str, Any]:
    """The job as a submit body, secret values masked as on every job view."""
    spec = draft.spec
    return {
        "type": spec.type,
        "command": spec.command,
        "binary_url": spec.binary_url,
        "binary_sha256": spec.binary_sha256,
        "arguments": list(spec.arguments),
        "env_variables": spec.env,
        "secret_env": masked(spec.secret_env),
        "priority": queue_class(draft.priority),
        "labels": list(spec.labels),
        "timeout": spec.timeout,
        "max_retries": draft.max_retries,
        "lease_seconds": draft.lease_seconds,
        "working_directory": spec.working_directory,
        "input_file_id": spec.input_file_id,
        "inputs": list(spec.inputs),
        "outputs": list(spec.outputs),
        "project_id": draft.project_id,
        "batch_id": draft.batch_id,
        "instructions": spec.instructions,
        "variables": spec.variables,
        "resources": spec.resources.as_dict() if spec.resources else None,
        "network": spec.network,
    }
