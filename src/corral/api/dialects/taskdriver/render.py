"""TaskDriver's views: camelCase, ``{"success": true, "data": ...}``, ISO times.

``task_view`` is the one picture of a task; every TaskDriver route that answers
with a task (the agents' routes too) renders it here.
"""

from __future__ import annotations

from typing import Any

from corral.api.responses import JSON
from corral.api.status_names import STATUS_BY_NAME as STATUS_BY_NAME
from corral.api.status_names import STATUS_NAMES as STATUS_NAMES
from corral.api.timefmt import iso
from corral.domain.jobs import Job
from corral.domain.priority import LEVELS
from corral.domain.projects import ProjectConfig, TaskType
from corral.domain.states import JobStatus
from corral.services.projects import ProjectStats, ProjectView


def ok(data: Any, status_code: int = 200) -> JSON:
    return JSON({"success": True, "data": data}, status_code=status_code)


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> JSON:
    """The document's bare ``data`` list, with the totals beside it for clients that page."""
    body = {
        "success": True,
        "data": items,
        "pagination": {
            "total": total,
            "limit": limit,
            "offset": offset,
            "hasMore": offset + len(items) < total,
        },
    }
    return JSON(body, headers={"X-Total-Count": str(total)})


def _number(value: float) -> float | int:
    """Whole minutes come out as integers, as the document writes them."""
    return int(value) if float(value).is_integer() else value


def config_view(config: ProjectConfig) -> dict[str, Any]:
    return {
        "defaultMaxRetries": config.default_max_retries,
        "defaultLeaseDurationMinutes": _number(config.default_lease_minutes),
        "reaperIntervalMinutes": _number(config.reaper_interval_minutes),
    }


def counts_view(counts: dict[JobStatus, int]) -> dict[str, int]:
    return {
        "totalTasks": sum(counts.values()),
        "completedTasks": counts.get(JobStatus.COMPLETED, 0),
        "failedTasks": counts.get(JobStatus.FAILED, 0),
        "queuedTasks": counts.get(JobStatus.PENDING, 0),
        "runningTasks": counts.get(JobStatus.RUNNING, 0),
        "cancelledTasks": counts.get(JobStatus.CANCELLED, 0),
    }


def project_view(view: ProjectView) -> dict[str, Any]:
    project = view.project
    return {
        "id": project.id,
        "name": project.name,
        "description": project.description,
        "instructions": project.instructions,
        "status": project.status.value,
        "createdAt": iso(project.created_at),
        "updatedAt": iso(project.updated_at),
        "config": config_view(project.config),
        "agentLogin": project.agent_login,
        "openAgentLogin": project.open_agent_login,
        "stats": counts_view(view.counts),
    }


def stats_view(stats: ProjectStats) -> dict[str, Any]:
    project, activity = stats.view.project, stats.activity
    average = activity.average_seconds
    return {
        "project": {
            "id": project.id,
            "name": project.name,
            "stats": counts_view(stats.view.counts),
        },
        "queueDepth": stats.view.counts.get(JobStatus.PENDING, 0),
        "activeAgents": activity.active_agents,
        "recentActivity": {
            "tasksCompletedLastHour": activity.completed,
            "tasksFailedLastHour": activity.failed,
            "averageTaskDuration": None if average is None else round(average, 3),
        },
    }


def task_type_view(task_type: TaskType) -> dict[str, Any]:
    lease = task_type.lease_minutes
    return {
        "id": task_type.id,
        "projectId": task_type.project_id,
        "name": task_type.name,
        "template": task_type.template,
        "variables": list(task_type.variables),
        "duplicateHandling": task_type.duplicate_handling.value,
        "maxRetries": task_type.max_retries,
        "leaseDurationMinutes": None if lease is None else _number(lease),
        "createdAt": iso(task_type.created_at),
        "updatedAt": iso(task_type.updated_at),
    }


def retry_count(job: Job) -> int:
    """Runs that ended and were tried again: a queued task's earlier runs all were;
    a running or finished task's current run is not a retry of itself."""
    runs = job.attempt - job.releases
    return max(0, runs if job.status is JobStatus.PENDING else runs - 1)


def task_view(job: Job) -> dict[str, Any]:
    queued = job.status is JobStatus.PENDING
    return {
        "id": job.id,
        "projectId": job.project_id,
        "typeId": job.task_type_id,
        "batchId": job.batch_id,
        "instructions": job.spec.instructions,
        "variables": job.spec.variables,
        "command": job.spec.command,
        "status": STATUS_NAMES[job.status],
        "priority": LEVELS.get(job.priority, str(job.priority)),
        "assignedTo": None if queued else job.executor_id,
        "assignedAt": None if queued else iso(job.started_at),
        "leaseExpiresAt": iso(job.lease_expires_at) if job.status is JobStatus.RUNNING else None,
        "createdAt": iso(job.created_at),
        "completedAt": iso(job.finished_at),
        "result": job.result,
        "error": job.error_message,
        "exitCode": job.exit_code,
        "retryCount": retry_count(job),
        "maxRetries": job.max_retries,
    }
