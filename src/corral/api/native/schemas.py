"""Request bodies of the native API; they turn into domain drafts and nothing else."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from corral.api.ranges import ATTEMPT, CPUS, EXIT_CODE, MEMORY_MB
from corral.api.storable import storable
from corral.domain import concurrency
from corral.domain import priority as prio
from corral.domain.dependencies import MAX_DEPENDENCIES, RunIf
from corral.domain.jobs import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_CLAIM,
    MAX_CPUS,
    MAX_MEMORY_MB,
    MAX_PIDS,
    MAX_RETRIES_LIMIT,
    MAX_TIMEOUT,
    MIN_CPUS,
    JobDraft,
    JobSpec,
    Outcome,
    Resources,
)
from corral.domain.retention import MAX_RETENTION_DAYS
from corral.domain.states import JobStatus
from corral.errors import InvalidInput

MAX_BULK_CANCEL = 1000  # ids per bulk cancel: each is a transaction, all in one request


class Body(BaseModel):
    """Every request body: a bad value is a 400 here, never a 500 from the store below."""

    @model_validator(mode="after")
    def _fits_the_store(self) -> Self:
        return storable(self)


class ResourceRequest(Body):
    """What a job asks of its worker; every field optional, ranges shown in OpenAPI."""

    cpus: float | None = Field(
        default=None, ge=MIN_CPUS, le=MAX_CPUS, description="CPU quota, reserved on the worker"
    )
    memory_mb: int | None = Field(
        default=None, ge=1, le=MAX_MEMORY_MB, description="hard memory limit, reserved"
    )
    pids: int | None = Field(default=None, ge=1, le=MAX_PIDS, description="process cap")

    def to_domain(self) -> Resources | None:
        res = Resources(cpus=self.cpus, memory_mb=self.memory_mb, pids=self.pids)
        return None if res.empty else res


class SubmitJob(Body):
    type: str | None = None
    binary_url: str | None = None
    binary_sha256: str | None = None
    command: str | None = None
    arguments: list[str] = Field(default_factory=list)
    env_variables: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    priority: str | None = None
    labels: list[str] = Field(default_factory=list)
    timeout: int = Field(default=DEFAULT_TIMEOUT, ge=1, le=MAX_TIMEOUT)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, le=MAX_RETRIES_LIMIT)
    lease_seconds: float = Field(default=DEFAULT_LEASE_SECONDS, ge=1, le=MAX_TIMEOUT)
    working_directory: str | None = None
    input_file_id: str | None = None
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    project_id: str | None = None
    batch_id: str | None = None
    instructions: str | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    resources: ResourceRequest | None = None
    network: bool = Field(default=True, description="false: run with no network at all")
    name: str | None = Field(default=None, max_length=200, description="shown in lists")
    retry_on_failure: bool = Field(
        default=False, description="max_retries also reruns a non-zero exit or a timeout"
    )
    retention_days: int | None = Field(
        default=None,
        ge=0,
        le=MAX_RETENTION_DAYS,
        description="days the job is kept once finished, then deleted with its output; "
        "0 keeps it for ever; unset: the server's --retention",
    )
    # jobs this one waits for, and which of their outcomes let it run.
    depends_on: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=MAX_DEPENDENCIES, description="job ids to wait for"
    )
    run_if: RunIf = Field(default=RunIf.SUCCESS, description="success | failure | always")
    # At most concurrency_limit jobs with this key run at once (docs/flow-control.md).
    concurrency_key: str | None = Field(
        default=None, min_length=1, max_length=200, description="jobs sharing it are limited"
    )
    concurrency_limit: int | None = Field(
        default=None,
        ge=1,
        le=concurrency.MAX_LIMIT,
        description="most jobs of the key running at once (default 1)",
    )

    def to_draft(self) -> JobDraft:
        """As documented, binary jobs must name their type and priority; command jobs may not."""
        if self.binary_url is not None or self.command is None:
            for name in ("type", "priority"):
                if getattr(self, name) is None:
                    raise InvalidInput(f"{name} is required", field=name)
        if self.concurrency_limit is not None and self.concurrency_key is None:
            raise InvalidInput(
                "concurrency_limit needs a concurrency_key", field="concurrency_limit"
            )
        spec = JobSpec(
            type=self.type or "shell",
            command=self.command,
            binary_url=self.binary_url,
            binary_sha256=self.binary_sha256,
            arguments=tuple(self.arguments),
            env=self.env_variables,
            secret_env=self.secret_env,
            working_directory=self.working_directory,
            input_file_id=self.input_file_id,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
            timeout=self.timeout,
            labels=tuple(self.labels),
            instructions=self.instructions,
            variables=self.variables,
            resources=self.resources.to_domain() if self.resources else None,
            network=self.network,
            name=self.name,
            retry_on_failure=self.retry_on_failure,
            retention_days=self.retention_days,
            concurrency_key=self.concurrency_key,
            concurrency_limit=self.concurrency_limit or concurrency.DEFAULT_LIMIT,
        )
        return JobDraft(
            spec=spec,
            priority=prio.parse_priority(self.priority or "background"),
            max_retries=self.max_retries,
            lease_seconds=self.lease_seconds,
            project_id=self.project_id,
            batch_id=self.batch_id,
            depends_on=tuple(self.depends_on),
            run_if=self.run_if,
        )


class BulkCancel(Body):
    job_ids: list[Annotated[str, Field(max_length=200)]] = Field(max_length=MAX_BULK_CANCEL)


class Claim(Body):
    executor_id: str = Field(min_length=1, max_length=200)
    executor_ip: str | None = None
    labels: list[str] = Field(default_factory=list)
    n: int | None = Field(default=None, ge=1, le=MAX_CLAIM)
    wait: float = Field(default=0.0, ge=0, le=60)
    runnable_only: bool = False
    project_id: str | None = None


class ExecutorCall(Body):
    executor_id: str = Field(min_length=1, max_length=200)
    attempt: int | None = Field(default=None, ge=1, le=ATTEMPT)


class Complete(ExecutorCall):
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = Field(default=None, ge=-EXIT_CODE - 1, le=EXIT_CODE)
    result: Any = None
    leftover_processes: int | None = Field(default=None, ge=0, le=1 << 31)

    def outcome(self) -> Outcome:
        return Outcome(
            JobStatus.COMPLETED,
            exit_code=self.exit_code,
            result=self.result,
            stdout=self.stdout,
            stderr=self.stderr,
            leftover_processes=self.leftover_processes,
        )


class Fail(Complete):
    error_message: str | None = None
    retry: bool = False

    def outcome(self) -> Outcome:
        return Outcome(
            JobStatus.FAILED,
            exit_code=self.exit_code,
            result=self.result,
            error_message=self.error_message,
            stdout=self.stdout,
            stderr=self.stderr,
            retry=self.retry,
            leftover_processes=self.leftover_processes,
        )


class ResultReport(Body):
    job_id: str
    executor_id: str = Field(min_length=1, max_length=200)
    attempt: int | None = Field(default=None, ge=1, le=ATTEMPT)
    status: Literal["completed", "failed", "cancelled"]
    exit_code: int | None = Field(default=None, ge=-EXIT_CODE - 1, le=EXIT_CODE)
    error_message: str | None = None
    result: Any = None
    retry: bool = False
    # Issue 12: processes of the job's cgroup killed after its main process ended.
    leftover_processes: int | None = Field(default=None, ge=0, le=1 << 31)

    def outcome(self) -> Outcome:
        return Outcome(
            JobStatus(self.status),
            exit_code=self.exit_code,
            error_message=self.error_message,
            result=self.result,
            retry=self.retry,
            leftover_processes=self.leftover_processes,
        )


class OutputChunk(ExecutorCall):
    stream: Literal["stdout", "stderr"]
    data: str
    # Where ``data`` starts in the stream (UTF-8 bytes): a chunk sent again after a lost
    # answer is stored once. ``truncated``: the sender lost output before this chunk.
    offset: int | None = Field(default=None, ge=0, le=1 << 62)
    truncated: bool = False


class RegisterExecutor(Body):
    executor_id: str = Field(min_length=1, max_length=200)
    hostname: str | None = None
    cpu_count: int | None = Field(default=None, ge=0, le=CPUS)
    memory_mb: int | None = Field(default=None, ge=0, le=MEMORY_MB)
    os: str | None = None
    labels: list[str] = Field(default_factory=list)
    concurrency: int = Field(default=1, ge=1, le=10000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    # Placement (issue 12): what this worker offers jobs and how it isolates them.
    cpus: float | None = Field(default=None, ge=0, le=1 << 20)
    isolation: Literal["sandbox", "user", "none"] | None = None
    network_control: bool = False


class HeldJob(Body):
    job_id: str
    attempt: int = Field(ge=1, le=ATTEMPT)


class ExecutorHeartbeat(Body):
    jobs: list[HeldJob] = Field(default_factory=list)
    draining: bool = False
    # A worker may restate its capacity on any beat; absent keeps what it registered.
    cpus: float | None = Field(default=None, ge=0, le=1 << 20)
    memory_mb: int | None = Field(default=None, ge=0, le=MEMORY_MB)
    isolation: Literal["sandbox", "user", "none"] | None = None
    network_control: bool | None = None


class NewToken(Body):
    role: str
    name: str = Field(default="", max_length=200)
    project_id: str | None = Field(default=None, max_length=200)  # agent tokens only
    expires_in: int | None = Field(default=None, ge=1, le=10 * 366 * 86400)  # seconds


class NewPersonalToken(Body):
    """A signed-in user's token for themselves: it takes the user's role."""

    name: str = Field(default="", max_length=200)
    expires_in: int | None = Field(default=None, ge=1, le=10 * 366 * 86400)  # seconds
