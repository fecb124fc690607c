"""CMD Executor's view of jobs and workers: camelCase, its status names, ISO times."""

from __future__ import annotations

from typing import Any

from corral.api.responses import JSON
from corral.api.status_names import STATUS_BY_NAME as STATUS_BY_NAME
from corral.api.status_names import STATUS_NAMES as STATUS_NAMES
from corral.api.timefmt import iso
from corral.domain.jobs import Job
from corral.domain.priority import LEVELS as LEVELS
from corral.domain.states import JobStatus
from corral.domain.workers import ExecutorState
from corral.services.executors import ExecutorView
from corral.services.jobs import JobDetails


def job_status(job: Job) -> str:
    return STATUS_NAMES[job.status]


def worker_status(view: ExecutorView) -> str:
    """online/offline from heartbeat age; ``error`` when the worker itself said so."""
    if view.state is ExecutorState.OFFLINE:
        return "offline"
    return "error" if view.executor.reported_status == "error" else "online"


def worker_summary(view: ExecutorView) -> dict[str, Any]:
    executor, info = view.executor, view.executor.info
    return {
        "workerId": info.executor_id,
        "hostname": info.hostname,
        "cpuCount": info.cpu_count,
        "totalMemoryMb": info.memory_mb,
        "status": worker_status(view),
        "lastHeartbeat": iso(executor.last_heartbeat),
        "registeredAt": iso(executor.registered_at),
        "currentJobId": view.running[0].id if view.running else None,
        "jobsCompleted": executor.jobs_completed,
        # Placement (issue 12): how it isolates jobs, what it offers and what is taken.
        "isolation": info.isolation,
        "networkControl": info.network_control,
        "cpus": info.cpu_capacity,
        "reservedCpus": view.reserved_cpus,
        "reservedMemoryMb": view.reserved_memory_mb,
    }


def worker_detail(view: ExecutorView) -> dict[str, Any]:
    info = view.executor.info
    metadata = dict(info.metadata)
    metadata.setdefault("tags", list(info.labels))
    return {
        **worker_summary(view),
        "labels": list(info.labels),
        "runningJobIds": [job.id for job in view.running],
        "metadata": metadata,
    }


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "jobId": job.id,
        "command": job.spec.command,
        "status": job_status(job),
        "priority": LEVELS.get(job.priority, str(job.priority)),
        "workerId": job.executor_id,
        "createdAt": iso(job.created_at),
        "startedAt": iso(job.started_at),
        "completedAt": iso(job.finished_at),
        "exitCode": job.exit_code,
    }


def progress(job: Job) -> int | None:
    """Queued is 0 and finished is 100; a running command does not say how far it is."""
    if job.status is JobStatus.PENDING:
        return 0
    return 100 if job.terminal else None


def job_detail(details: JobDetails) -> dict[str, Any]:
    job = details.job
    return {
        **job_summary(job),
        "timeout": job.spec.timeout,
        "workingDirectory": job.spec.working_directory,
        "fileId": job.spec.input_file_id,
        "attempt": job.attempt,
        "stdout": details.stdout.decode("utf-8", "replace"),
        "stderr": details.stderr.decode("utf-8", "replace"),
        "stdoutTruncated": job.stdout.truncated,
        "stderrTruncated": job.stderr.truncated,
        "progress": progress(job),
        "error": job.error_message,
    }


def page(items: list[dict[str, Any]], key: str, total: int, limit: int, offset: int) -> JSON:
    """The document's list shape under its own key, and under the generic ``data`` too."""
    return JSON(
        {
            "success": True,
            "total": total,
            "limit": limit,
            "offset": offset,
            "hasMore": offset + len(items) < total,
            key: items,
            "data": items,
        }
    )
