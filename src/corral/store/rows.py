"""Row <-> domain conversion shared by both adapters.

Both engines keep times as epoch seconds and structured fields as JSON text,
so one codec serves SQLite rows and asyncpg records alike.
"""

from __future__ import annotations

import importlib.resources
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
from corral.domain.projects import (
    DuplicateHandling,
    Project,
    ProjectConfig,
    ProjectStatus,
    TaskType,
)
from corral.domain.sessions import AgentSession
from corral.domain.states import AttemptStatus, JobStatus
from corral.domain.workers import Executor, ExecutorInfo
from corral.store.accounts_port import UserRecord
from corral.store.fleet_port import TokenRecord

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


def executor_from_row(row: Mapping[str, Any]) -> Executor:
    info = ExecutorInfo(
        executor_id=row["executor_id"],
        principal_id=row["principal_id"],
        hostname=row["hostname"],
        ip=row["ip"],
        cpu_count=row["cpu_count"],
        memory_mb=row["memory_mb"],
        os=row["os"],
        labels=tuple(orjson.loads(row["labels"])),
        concurrency=row["concurrency"],
        metadata=orjson.loads(row["metadata"]),
        cpus=row["cpus"],
        isolation=row["isolation"],
        network_control=bool(row["network_control"]),
    )
    return Executor(
        info=info,
        registered_at=row["registered_at"],
        last_heartbeat=row["last_heartbeat"],
        draining=bool(row["draining"]),
        jobs_completed=row["jobs_completed"],
        reported_status=row["reported_status"],
        registered=bool(row["registered"]),
    )


def executor_params(info: ExecutorInfo) -> tuple[Any, ...]:
    """What an executor says about itself, in the column order both upserts use."""
    return (
        info.executor_id,
        info.principal_id,
        info.hostname,
        info.ip,
        info.cpu_count,
        info.memory_mb,
        info.os,
        orjson.dumps(list(info.labels)).decode(),
        info.concurrency,
        orjson.dumps(info.metadata).decode(),
    )


def executor_placement_params(info: ExecutorInfo) -> tuple[float | None, str | None, int]:
    """What an executor offers for placement, appended after ``executor_params`` and times."""
    return (info.cpus, info.isolation, int(info.network_control))


def token_from_row(row: Mapping[str, Any]) -> TokenRecord:
    return TokenRecord(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        revoked=bool(row["revoked"]),
        executor_id=row["executor_id"],
        project_id=row["project_id"],
        expires_at=row["expires_at"],
        last_used_at=row["last_used_at"],
        user_id=row["user_id"],
    )


def user_from_row(row: Mapping[str, Any]) -> UserRecord:
    return UserRecord(
        id=row["id"],
        email=row["email"],
        password_hash=row["password_hash"],
        role=row["role"],
        created_at=row["created_at"],
        disabled=bool(row["disabled"]),
        sessions_after=float(row["sessions_after"]),
        session_epoch=int(row["session_epoch"]),
    )


PROJECT_COLUMNS = (
    "id",
    "name",
    "description",
    "instructions",
    "status",
    "config",
    "agent_login",
    "open_agent_login",
    "created_at",
    "updated_at",
    "created_by",
)
TASK_TYPE_COLUMNS = (
    "id",
    "project_id",
    "name",
    "template",
    "variables",
    "duplicate_handling",
    "max_retries",
    "lease_minutes",
    "created_at",
    "updated_at",
)


def project_params(project: Project) -> tuple[Any, ...]:
    """A project in ``PROJECT_COLUMNS`` order; the config travels as one JSON document."""
    config = project.config
    doc = {
        "default_max_retries": config.default_max_retries,
        "default_lease_minutes": config.default_lease_minutes,
        "reaper_interval_minutes": config.reaper_interval_minutes,
    }
    return (
        project.id,
        project.name,
        project.description,
        project.instructions,
        project.status.value,
        orjson.dumps(doc).decode(),
        int(project.agent_login),
        int(project.open_agent_login),
        project.created_at,
        project.updated_at,
        project.created_by,
    )


def project_from_row(row: Mapping[str, Any]) -> Project:
    doc = orjson.loads(row["config"])
    known = {k: v for k, v in doc.items() if k in ProjectConfig.__dataclass_fields__}
    return Project(
        id=row["id"],
        name=row["name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
        instructions=row["instructions"],
        status=ProjectStatus(row["status"]),
        config=ProjectConfig(**known),
        agent_login=bool(row["agent_login"]),
        open_agent_login=bool(row["open_agent_login"]),
        created_by=row["created_by"],
    )


def task_type_params(task_type: TaskType) -> tuple[Any, ...]:
    return (
        task_type.id,
        task_type.project_id,
        task_type.name,
        task_type.template,
        orjson.dumps(list(task_type.variables)).decode(),
        task_type.duplicate_handling.value,
        task_type.max_retries,
        task_type.lease_minutes,
        task_type.created_at,
        task_type.updated_at,
    )


def task_type_from_row(row: Mapping[str, Any]) -> TaskType:
    return TaskType(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        template=row["template"],
        variables=tuple(orjson.loads(row["variables"])),
        duplicate_handling=DuplicateHandling(row["duplicate_handling"]),
        max_retries=row["max_retries"],
        lease_minutes=row["lease_minutes"],
    )


def result_to_json(result: Any) -> str | None:
    return None if result is None else orjson.dumps(result).decode()


def load_migrations(backend: str) -> list[tuple[int, str]]:
    """(version, sql) pairs shipped in ``store/migrations/<backend>``, in order."""
    folder = importlib.resources.files("corral.store") / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def splice(chunks: list[Any], offset: int, limit: int) -> bytes:
    """Join stored (offset, data) chunks and cut out ``limit`` bytes from ``offset``."""
    out = bytearray()
    for chunk_offset, data in chunks:
        start = max(0, offset - chunk_offset)
        out += bytes(data)[start:]
    return bytes(out[:limit])


SESSION_COLUMNS = (
    "id, token_hash, agent_name, project_id, created_at, expires_at, last_activity, revoked, "
    "credential_id"
)


def session_from_row(row: Any) -> AgentSession:
    return AgentSession(
        id=row["id"],
        token_hash=row["token_hash"],
        agent_name=row["agent_name"],
        project_id=row["project_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        last_activity=row["last_activity"],
        revoked=bool(row["revoked"]),
        credential_id=row["credential_id"],
    )
