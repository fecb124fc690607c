"""Job rows <-> domain jobs and attempts, shared by both adapters.

Both engines keep times as epoch seconds and structured fields as JSON text,
so one codec serves SQLite rows and asyncpg records alike. The other tables' rows
are read the same way, each by role beside its port: ``fleet_rows``,
``accounts_rows`` and ``projects_rows``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from corral.domain.dependencies import RunIf
from corral.domain.jobs import (
    DEFAULT_TIMEOUT,
    Attempt,
    Job,
    JobSpec,
    NewJob,
    Resources,
    StreamState,
)
from corral.domain.states import AttemptStatus, JobStatus

JOB_COLUMNS = (
    "seq, id, type, status, priority, spec, owner_id, project_id, batch_id, task_type_id, "
    "max_retries, lease_seconds, attempt, releases, executor_id, executor_ip, lease_principal_id, "
    "run_after, lease_expires_at, created_at, started_at, finished_at, exit_code, "
    "error_message, result, cancel_requested, stdout_size, stdout_truncated, "
    "stderr_size, stderr_truncated, run_if, workflow_id, dependants, schedule_id, scheduled_for, "
    "turn"
)
# A job waiting for its dependencies is stored as 'blocked' (outside the claim
# indexes) and read back as pending with ``blocked=True``.
BLOCKED = "blocked"
# A job waiting for a slot of its concurrency key is stored as 'held', likewise
# (``held=True``); see domain/concurrency.py.
HELD = "held"
WAITING = (BLOCKED, HELD)  # stored statuses the domain reads as pending

JOB_INSERT_COLUMNS = (
    "id",
    "type",
    "status",
    "priority",
    "runnable",
    "labels",
    "spec",
    "owner_id",
    "project_id",
    "batch_id",
    "task_type_id",
    "max_retries",
    "lease_seconds",
    "created_at",
    "dedupe_key",
    "req_cpus",
    "req_memory_mb",
    "no_network",
    "placed",
    "run_if",
    "workflow_id",
    "schedule_id",
    "scheduled_for",
    "retention_days",
    "concurrency_key",
    "concurrency_limit",
    "share_id",
)


def spec_to_json(spec: JobSpec) -> str:
    doc: dict[str, Any] = {"type": spec.type}
    for name in (
        "command",
        "binary_url",
        "binary_sha256",
        "working_directory",
        "input_file_id",
        "instructions",
        "name",
    ):
        value = getattr(spec, name)
        if value is not None:
            doc[name] = value
    for name in ("arguments", "inputs", "outputs", "labels"):
        value = getattr(spec, name)
        if value:
            doc[name] = list(value)
    if spec.concurrency_key is not None:
        doc["concurrency_key"] = spec.concurrency_key
        doc["concurrency_limit"] = spec.concurrency_limit
    if spec.env:
        doc["env"] = spec.env
    if spec.secret_env:  # in the clear, like the rest of the spec: readers get it masked
        doc["secret_env"] = spec.secret_env
    if spec.variables:
        doc["variables"] = spec.variables
    if spec.timeout != DEFAULT_TIMEOUT:
        doc["timeout"] = spec.timeout
    if spec.resources is not None:
        doc["resources"] = spec.resources.as_dict()
    if not spec.network:
        doc["network"] = False
    if spec.retry_on_failure:
        doc["retry_on_failure"] = True
    if spec.retention_days is not None:
        doc["retention_days"] = spec.retention_days
    return orjson.dumps(doc).decode()


def spec_from_json(text: str) -> JobSpec:
    doc = orjson.loads(text)
    for name in ("arguments", "inputs", "outputs", "labels"):
        if name in doc:
            doc[name] = tuple(doc[name])
    if "resources" in doc:
        doc["resources"] = Resources(**doc["resources"])
    return JobSpec(**doc)


def labels_to_column(labels: tuple[str, ...]) -> str:
    """'' for no labels keeps the claim query's common case a plain comparison."""
    return orjson.dumps(sorted(set(labels))).decode() if labels else ""


def new_job_params(job: NewJob) -> tuple[Any, ...]:
    return (
        job.id,
        job.spec.type,
        stored_status(job),
        job.priority,
        job.spec.runnable_level,
        labels_to_column(job.spec.labels),
        spec_to_json(job.spec),
        job.owner_id,
        job.project_id,
        job.batch_id,
        job.task_type_id,
        job.max_retries,
        job.lease_seconds,
        job.created_at,
        job.dedupe_key,
        *placement_params(job.spec),
        job.run_if.value if job.depends_on else None,
        job.workflow_id,
        job.schedule_id,
        job.scheduled_for,
        job.spec.retention_days,
        job.spec.concurrency_key,
        job.spec.concurrency_limit if job.spec.concurrency_key else None,
        job.share,
    )


def stored_status(job: NewJob) -> str:
    """Waiting for dependencies first; then, with a key, held until admitted."""
    if job.depends_on:
        return BLOCKED
    return HELD if job.spec.concurrency_key is not None else JobStatus.PENDING.value


def placement_params(spec: JobSpec) -> tuple[float | None, int | None, int, int]:
    """The claim's copy of what a job asks: cpus, memory, no network, and whether any is set."""
    res = spec.resources or Resources()
    return (res.cpus, res.memory_mb, int(not spec.network), int(spec.placed))


def job_from_row(row: Sequence[Any]) -> Job:
    """The job in a row that starts with ``JOB_COLUMNS``, in that order (other columns
    may follow). Read by position: by name, a SQLite row costs a lookup per column,
    half the time of building the job, on every claim and report."""
    (
        seq,
        job_id,
        _type,
        status,
        priority,
        spec,
        owner_id,
        project_id,
        batch_id,
        task_type_id,
        max_retries,
        lease_seconds,
        attempt,
        releases,
        executor_id,
        executor_ip,
        lease_principal_id,
        run_after,
        lease_expires_at,
        created_at,
        started_at,
        finished_at,
        exit_code,
        error_message,
        result,
        cancel_requested,
        stdout_size,
        stdout_truncated,
        stderr_size,
        stderr_truncated,
        run_if,
        workflow_id,
        dependants,
        schedule_id,
        scheduled_for,
        turn,
    ) = row[:_JOB_COLUMN_COUNT]
    return Job(
        id=job_id,
        seq=seq,
        spec=spec_from_json(spec),
        priority=priority,
        owner_id=owner_id,
        status=_STATUS[status],
        created_at=created_at,
        max_retries=max_retries,
        lease_seconds=lease_seconds,
        attempt=attempt,
        releases=releases,
        project_id=project_id,
        batch_id=batch_id,
        task_type_id=task_type_id,
        executor_id=executor_id,
        executor_ip=executor_ip,
        lease_principal_id=lease_principal_id,
        run_after=run_after,
        lease_expires_at=lease_expires_at,
        started_at=started_at,
        finished_at=finished_at,
        exit_code=exit_code,
        error_message=error_message,
        result=orjson.loads(result) if result is not None else None,
        cancel_requested=bool(cancel_requested),
        stdout=_stream(stdout_size, stdout_truncated),
        stderr=_stream(stderr_size, stderr_truncated),
        blocked=status == BLOCKED,
        held=status == HELD,
        turn=turn,
        run_if=RunIf(run_if) if run_if else None,
        workflow_id=workflow_id,
        has_dependants=dependants > 0,
        schedule_id=schedule_id,
        scheduled_for=scheduled_for,
    )


_JOB_COLUMN_COUNT = len(JOB_COLUMNS.split(","))
# The status the domain sees for each stored one: a blocked or held job is pending.
_STATUS = {**{s.value: s for s in JobStatus}, BLOCKED: JobStatus.PENDING, HELD: JobStatus.PENDING}
_NO_OUTPUT = StreamState()


def _stream(size: int, truncated: Any) -> StreamState:
    return _NO_OUTPUT if not size and not truncated else StreamState(size, bool(truncated))


def job_status(stored: str) -> JobStatus:
    """The status the domain sees: a blocked or held job is pending."""
    return JobStatus.PENDING if stored in WAITING else JobStatus(stored)


def equals(column: str, value: Any, mark: str) -> str:
    """``column = mark`` for a filter; a pending status matches blocked and held jobs
    too, since they are pending (the claim queries never use this: they want claimable
    ones)."""
    if column == "status" and value == JobStatus.PENDING.value:
        return f"status IN ({mark}, '{BLOCKED}', '{HELD}')"
    return f"{column} = {mark}"


def status_counts(rows: Iterable[Sequence[Any]]) -> dict[JobStatus, int]:
    """(stored status, count) rows summed by domain status (blocked counts as pending)."""
    counts: dict[JobStatus, int] = {}
    for stored, n in rows:
        status = job_status(stored)
        counts[status] = counts.get(status, 0) + int(n)
    return counts


def attempt_from_row(row: Mapping[str, Any]) -> Attempt:
    return Attempt(
        job_id=row["job_id"],
        number=row["number"],
        executor_id=row["executor_id"],
        executor_ip=row["executor_ip"],
        claimed_at=row["claimed_at"],
        status=AttemptStatus(row["status"]),
        ended_at=row["ended_at"],
        exit_code=row["exit_code"],
        error_message=row["error_message"],
        leftover_processes=row["leftover_processes"],
    )


def result_to_json(result: Any) -> str | None:
    return None if result is None else orjson.dumps(result).decode()


def splice(chunks: list[Any], offset: int, limit: int) -> bytes:
    """Join stored (offset, data) chunks and cut out ``limit`` bytes from ``offset``."""
    out = bytearray()
    for chunk_offset, data in chunks:
        start = max(0, offset - chunk_offset)
        out += bytes(data)[start:]
    return bytes(out[:limit])
