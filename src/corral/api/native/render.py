"""Jobs, attempts and executors as the executor-queue document shows them.

Every reader sees a job's ``secret_env`` names with masked values; only
``claimed`` (the answer to the executor that now holds the lease) carries the
real values, because that executor has to put them in the process env.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from corral.api.timefmt import iso
from corral.domain.env import masked
from corral.domain.jobs import Attempt, Job
from corral.domain.leases import attempts_spent
from corral.domain.outcomes import describe_outcome
from corral.domain.priority import queue_class
from corral.domain.retry import RetryPolicy, describe_retries
from corral.services.executors import ExecutorView
from corral.services.jobs import JobDetails

_POLICY = RetryPolicy()  # the dispatcher's, as the lease service applies it


def created(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.spec.type,
        "status": job.status.value,
        "created_at": iso(job.created_at),
    }


def render_created(jobs: Sequence[Job]) -> bytes:
    return orjson.dumps(created(jobs[0]))


def render_bulk(jobs: Sequence[Job]) -> bytes:
    return orjson.dumps([{"id": j.id, "status": j.status.value} for j in jobs])


def summary(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": job.spec.name,
        "type": job.spec.type,
        "status": job.status.value,
        "priority": queue_class(job.priority),
        "executor_id": job.executor_id,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "exit_code": job.exit_code,
        "command": job.spec.command,
        "labels": list(job.spec.labels),
        "project_id": job.project_id,
        "batch_id": job.batch_id,
        "blocked": job.blocked,
        "concurrency_key": job.spec.concurrency_key,
        "held": job.held,  # waiting for a slot of its concurrency key
        "workflow_id": job.workflow_id,
        "schedule_id": job.schedule_id,  # fired by this schedule, for this tick
        "scheduled_for": iso(job.scheduled_for),
    }


def job_body(job: Job) -> dict[str, Any]:
    """Everything about a job except its output and attempts."""
    spec = job.spec
    return {
        **summary(job),
        "binary_url": spec.binary_url,
        "binary_sha256": spec.binary_sha256,
        "arguments": list(spec.arguments),
        "env_variables": spec.env,
        "secret_env": masked(spec.secret_env),
        "working_directory": spec.working_directory,
        "input_file_id": spec.input_file_id,
        "inputs": list(spec.inputs),
        "outputs": list(spec.outputs),
        "timeout": spec.timeout,
        "instructions": spec.instructions,
        "variables": spec.variables,
        "resources": spec.resources.as_dict() if spec.resources else None,
        "network": spec.network,
        "max_retries": job.max_retries,
        "retry_on_failure": job.spec.retry_on_failure,
        "retention_days": spec.retention_days,
        "retries": describe_retries(
            job.max_retries, job.spec.retry_on_failure, attempts_spent(job), _POLICY
        ),
        "outcome": describe_outcome(job.status, job.exit_code, job.error_message),
        "lease_seconds": job.lease_seconds,
        "attempt": job.attempt,
        "lease_expires_at": iso(job.lease_expires_at),
        "cancel_requested": job.cancel_requested,
        "completed_at": iso(job.finished_at),
        "error_message": job.error_message,
        "result": job.result,
        "stdout_truncated": job.stdout.truncated,
        "stderr_truncated": job.stderr.truncated,
        "run_if": job.run_if.value if job.run_if else None,
        "concurrency_limit": job.spec.concurrency_limit if job.spec.concurrency_key else None,
    }


def attempt(a: Attempt) -> dict[str, Any]:
    return {
        "attempt": a.number,
        "executor_id": a.executor_id,
        "executor_ip": a.executor_ip,
        "started_at": iso(a.claimed_at),
        "ended_at": iso(a.ended_at),
        "status": a.status.value,
        "exit_code": a.exit_code,
        "error_message": a.error_message,
        "leftover_processes": a.leftover_processes,
    }


def details(d: JobDetails) -> dict[str, Any]:
    return {
        **job_body(d.job),
        "stdout": d.stdout.decode(errors="replace"),
        "stderr": d.stderr.decode(errors="replace"),
        "attempts": [attempt(a) for a in d.attempts],
    }


def claimed(job: Job) -> dict[str, Any]:
    """A freshly claimed job, for the executor now holding its lease: the only place
    secret values leave the server. Its new attempt has no output yet."""
    body = job_body(job)
    body["secret_env"] = dict(job.spec.secret_env)  # in place of the masked values
    body["stdout"] = ""
    body["stderr"] = ""
    return body


def executor(view: ExecutorView) -> dict[str, Any]:
    ex = view.executor
    info = ex.info
    current = view.running[0] if view.running else None
    return {
        "executor_id": info.executor_id,
        "current_job_id": current.id if current else None,
        "job_type": current.spec.type if current else None,
        "last_heartbeat": iso(ex.last_heartbeat),
        "jobs_completed": ex.jobs_completed,
        "state": view.state.value,
        "running_job_ids": [j.id for j in view.running],
        "hostname": info.hostname,
        "ip": info.ip,
        "cpu_count": info.cpu_count,
        "memory_mb": info.memory_mb,
        "os": info.os,
        "labels": list(info.labels),
        "concurrency": info.concurrency,
        "registered_at": iso(ex.registered_at),
        # Placement (issue 12): how it isolates jobs, what it offers and what is taken.
        "isolation": info.isolation,
        "network_control": info.network_control,
        "capacity": {"cpus": info.cpu_capacity, "memory_mb": info.memory_capacity},
        "reserved": {"cpus": view.reserved_cpus, "memory_mb": view.reserved_memory_mb},
    }
