"""Octaskly's view of tasks and stats: snake_case, its status names, ISO times, milliseconds."""

from __future__ import annotations

import math
from typing import Any

from corral.api.status_names import STATUS_BY_NAME as STATUS_BY_NAME
from corral.api.status_names import STATUS_NAMES as STATUS_NAMES
from corral.api.timefmt import iso
from corral.domain.jobs import Job
from corral.services.jobs import JobDetails
from corral.services.stats import Overview

MB = 1024 * 1024


def created(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "command": job.spec.command,
        "status": STATUS_NAMES[job.status],
        "created_at": iso(job.created_at),
    }


def duration_ms(job: Job) -> int | None:
    """Only a finished run has a duration; a queued or running task has none yet."""
    if job.started_at is None or job.finished_at is None:
        return None
    return round((job.finished_at - job.started_at) * 1000)


def summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "command": job.spec.command,
        "status": STATUS_NAMES[job.status],
        "worker_id": job.executor_id,
        "exit_code": job.exit_code,
        "duration_ms": duration_ms(job),
        "created_at": iso(job.created_at),
        "completed_at": iso(job.finished_at),
    }


def detail(details: JobDetails) -> dict[str, Any]:
    """The document's fields, then what a failed or collected task needs explained."""
    job = details.job
    return {
        **summary(job),
        "stdout": details.stdout.decode("utf-8", "replace"),
        "stderr": details.stderr.decode("utf-8", "replace"),
        "timeout": job.spec.timeout,
        "inputs": list(job.spec.inputs),
        "outputs": list(job.spec.outputs),
        "started_at": iso(job.started_at),
        "error": job.error_message,  # e.g. "missing input: data.csv"
        "artifacts_url": f"/api/v1/jobs/{job.id}/artifacts" if job.spec.outputs else None,
    }


def page(jobs: list[Job], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "tasks": [summary(job) for job in jobs],
        "total": total,
        "returned": len(jobs),
        "limit": limit,
        "offset": offset,
    }


def stats(overview: Overview) -> dict[str, Any]:
    by_status, fleet, process = overview.queue.jobs_by_status, overview.fleet, overview.process
    memory = process.memory_mb
    return {
        "workers": {"total": fleet.total, "active": fleet.active, "idle": fleet.idle},
        "tasks": {STATUS_NAMES[status]: by_status.get(status, 0) for status in STATUS_NAMES},
        "system": {
            "uptime_seconds": int(process.uptime_seconds),
            "memory_usage_mb": round(memory) if memory is not None else None,
            "cpu_usage_percent": round(process.cpu_percent, 1),
        },
        "database": {
            "total_tasks": overview.total_jobs,
            # Rounded up, so a database that holds anything never reads as 0 MB.
            "disk_size_mb": math.ceil(overview.database_bytes / MB),
        },
    }
