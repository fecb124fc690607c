"""Jobs and attempts: what every dialect submits, stores and reads back.

One ``JobSpec`` carries all that the four documents can ask for (a shell
command or a hashed binary, arguments, env and secret env, archive,
inputs/outputs, labels, free-form instructions for external agents); the
dialects only rename fields. The env rules live in ``env.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from corral.domain import concurrency
from corral.domain.dependencies import RunIf
from corral.domain.env import validate_env
from corral.domain.files import relative_path
from corral.domain.retention import check_retention_days
from corral.domain.states import AttemptStatus, JobStatus
from corral.errors import InvalidInput

DEFAULT_TIMEOUT = 3600
MAX_TIMEOUT = 86400
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_MAX_RETRIES = 3
MAX_RETRIES_LIMIT = 100
# Jobs one claim may lease. The native claim route refuses more and tells workers this
# figure when they register; a worker clamps its claims to it.
MAX_CLAIM = 100

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_TYPE = re.compile(r"^\S{1,200}$")
_LABEL = re.compile(r"^[A-Za-z0-9_.:/-]{1,100}$")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")

# What one job may ask of a worker: generous ceilings, only there to refuse nonsense
# before it reaches the store (a job asking more than any worker has waits, with a reason).
MAX_CPUS = 4096.0
MIN_CPUS = 0.01
MAX_MEMORY_MB = 1 << 24  # 16 TiB
MAX_PIDS = 4194304  # the kernel's own pid_max ceiling


# How much a job asks of whoever runs it, stored so a claim can filter on it:
# nothing to execute (external agents only), a binary, or a shell command.
RUNNABLE_NONE = 0
RUNNABLE_ANY = 1
RUNNABLE_COMMAND = 2


@dataclass(frozen=True, slots=True)
class Resources:
    """What a job asks to be given: a CPU quota, a hard memory limit, a process cap.

    ``cpus`` and ``memory_mb`` are reserved on the worker that claims the job
    (placement); ``pids`` is only a limit. ``None`` asks nothing of that kind.
    """

    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = None

    @property
    def empty(self) -> bool:
        return self.cpus is None and self.memory_mb is None and self.pids is None

    def validate(self) -> None:
        if self.cpus is not None and not MIN_CPUS <= self.cpus <= MAX_CPUS:
            raise InvalidInput(
                f"resources.cpus must be between {MIN_CPUS} and {MAX_CPUS:g}",
                field="resources.cpus",
            )
        if self.memory_mb is not None and not 1 <= self.memory_mb <= MAX_MEMORY_MB:
            raise InvalidInput(
                f"resources.memory_mb must be between 1 and {MAX_MEMORY_MB}",
                field="resources.memory_mb",
            )
        if self.pids is not None and not 1 <= self.pids <= MAX_PIDS:
            raise InvalidInput(
                f"resources.pids must be between 1 and {MAX_PIDS}", field="resources.pids"
            )

    def as_dict(self) -> dict[str, float | int | None]:
        return {"cpus": self.cpus, "memory_mb": self.memory_mb, "pids": self.pids}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What to run and under which limits. Immutable once submitted."""

    type: str = "shell"
    command: str | None = None
    binary_url: str | None = None
    binary_sha256: str | None = None
    arguments: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    # Values only the executor holding the lease ever sees; kept out of repr so a
    # stray log of a spec cannot print them.
    secret_env: dict[str, str] = field(default_factory=dict, repr=False)
    working_directory: str | None = None
    input_file_id: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    timeout: int = DEFAULT_TIMEOUT
    labels: tuple[str, ...] = ()
    instructions: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    resources: Resources | None = None
    network: bool = True  # False: run with no network, only on a worker that can cut it
    name: str | None = None  # a label for people: shown in lists, matched by text search
    # Rerun on a non-zero exit (or timeout) while retries remain, not only on lost leases.
    retry_on_failure: bool = False
    # Days to keep the job once finished (domain.retention): None follows the server's
    # --retention, 0 keeps it for ever.
    retention_days: int | None = None
    # At most ``concurrency_limit`` jobs with this key run at once (domain/concurrency.py).
    concurrency_key: str | None = None
    concurrency_limit: int = concurrency.DEFAULT_LIMIT

    @property
    def placed(self) -> bool:
        """Whether a claim must check this job against the claimer's capacity."""
        res = self.resources
        reserves = res is not None and (res.cpus is not None or res.memory_mb is not None)
        return reserves or not self.network

    @property
    def runnable_level(self) -> int:
        if self.command is not None:
            return RUNNABLE_COMMAND
        return RUNNABLE_ANY if self.binary_url is not None else RUNNABLE_NONE

    def validate(self) -> None:
        """Rules every dialect shares; raise ``InvalidInput`` naming the field."""
        if not _TYPE.match(self.type):
            raise InvalidInput("type must be 1-200 characters without spaces", field="type")
        self._validate_target()
        if not 1 <= self.timeout <= MAX_TIMEOUT:
            raise InvalidInput(f"timeout must be between 1 and {MAX_TIMEOUT}", field="timeout")
        validate_env(self.env, self.secret_env)
        if self.working_directory not in (None, "", "."):
            relative_path(self.working_directory, "working_directory")
        for label in self.labels:
            if not _LABEL.match(label):
                raise InvalidInput(f"invalid label: {label!r}", field="labels")
        if any("\x00" in a for a in self.arguments):
            raise InvalidInput("arguments may not contain NUL bytes", field="arguments")
        if self.resources is not None:
            self.resources.validate()
        if self.name is not None and not _NAME.match(self.name):
            raise InvalidInput("name must be 1-200 characters, no control characters", field="name")
        check_retention_days(self.retention_days)
        concurrency.validate(self.concurrency_key, self.concurrency_limit)

    def _validate_target(self) -> None:
        if self.command is not None and self.binary_url is not None:
            raise InvalidInput("give either command or binary_url, not both", field="command")
        if self.binary_url is not None:
            if not self.binary_url.startswith(("http://", "https://")):
                raise InvalidInput("binary_url must be an http(s) URL", field="binary_url")
            if not self.binary_sha256 or not _SHA256.match(self.binary_sha256):
                raise InvalidInput(
                    "binary_sha256 must be 64 hexadecimal characters", field="binary_sha256"
                )
        elif self.command is not None:
            if not self.command.strip():
                raise InvalidInput("command must not be empty", field="command")
            if "\x00" in self.command:
                raise InvalidInput("command may not contain NUL bytes", field="command")
        elif self.instructions is None:
            raise InvalidInput(
                "a job needs a command, a binary_url, or instructions", field="command"
            )


@dataclass(frozen=True, slots=True)
class NewJob:
    """A validated submission, before the store gives it a sequence number."""

    id: str
    spec: JobSpec
    priority: int
    owner_id: str
    created_at: float
    max_retries: int = DEFAULT_MAX_RETRIES
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    project_id: str | None = None
    batch_id: str | None = None
    task_type_id: str | None = None
    dedupe_key: str | None = None  # set for task types that refuse or fold duplicates
    depends_on: tuple[str, ...] = ()  # ids of jobs it waits for (domain.dependencies)
    run_if: RunIf = RunIf.SUCCESS
    workflow_id: str | None = None
    schedule_id: str | None = None  # fired by this schedule...
    scheduled_for: float | None = None  # ...for this tick (unique per schedule)
    share_id: str | None = None  # whose fair share it counts against; None: its owner's

    @property
    def share(self) -> str:
        return self.share_id or self.owner_id

    def stored(self, seq: int) -> Job:
        """The job as it reads back right after insertion."""
        return Job(
            id=self.id,
            seq=seq,
            spec=self.spec,
            priority=self.priority,
            owner_id=self.owner_id,
            status=JobStatus.PENDING,
            created_at=self.created_at,
            max_retries=self.max_retries,
            lease_seconds=self.lease_seconds,
            project_id=self.project_id,
            batch_id=self.batch_id,
            task_type_id=self.task_type_id,
            blocked=bool(self.depends_on),
            held=not self.depends_on and self.spec.concurrency_key is not None,
            run_if=self.run_if if self.depends_on else None,
            workflow_id=self.workflow_id,
            schedule_id=self.schedule_id,
            scheduled_for=self.scheduled_for,
        )

    def validate(self) -> None:
        self.spec.validate()
        if not 0 <= self.max_retries <= MAX_RETRIES_LIMIT:
            raise InvalidInput(
                f"max_retries must be between 0 and {MAX_RETRIES_LIMIT}", field="max_retries"
            )
        if not 1 <= self.lease_seconds <= MAX_TIMEOUT:
            raise InvalidInput("lease_seconds must be between 1 and 86400", field="lease_seconds")


@dataclass(frozen=True, slots=True)
class StreamState:
    """How much of one output stream is stored for the current attempt."""

    size: int = 0
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored: its spec plus where it stands now."""

    id: str
    seq: int
    spec: JobSpec
    priority: int
    owner_id: str
    status: JobStatus
    created_at: float
    max_retries: int
    lease_seconds: float
    attempt: int = 0
    releases: int = 0  # attempts handed back unstarted; they spend no retry
    project_id: str | None = None
    batch_id: str | None = None
    task_type_id: str | None = None
    executor_id: str | None = None
    executor_ip: str | None = None
    lease_principal_id: str | None = None
    run_after: float = 0.0
    lease_expires_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    error_message: str | None = None
    result: Any = None
    cancel_requested: bool = False
    stdout: StreamState = StreamState()
    stderr: StreamState = StreamState()
    # Pending but waiting for its dependencies: never claimed until they decide it.
    blocked: bool = False
    # Pending but waiting for a slot of its concurrency key (domain/concurrency.py).
    held: bool = False
    turn: int = 0  # its place among its owner's jobs for fair share (domain/fairness.py)
    run_if: RunIf | None = None  # None: it depends on nothing
    workflow_id: str | None = None
    has_dependants: bool = False  # its end may start or cancel other jobs
    schedule_id: str | None = None  # the schedule that fired it, if any
    scheduled_for: float | None = None  # the tick it was fired for, not its submit time

    @property
    def terminal(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def runnable(self) -> bool:
        """Whether a ``corral worker`` can execute it (else it waits for an external agent)."""
        return self.spec.command is not None or self.spec.binary_url is not None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a job on one executor."""

    job_id: str
    number: int
    executor_id: str
    executor_ip: str | None
    claimed_at: float
    status: AttemptStatus
    ended_at: float | None = None
    exit_code: int | None = None
    error_message: str | None = None
    leftover_processes: int | None = None  # killed after the main process ended


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """Who claims to hold a job's lease: the fencing token of every executor call.

    ``attempt`` may be omitted by clients of the executor-queue document, which
    only send their ``executor_id``; the executor id is then the fence.
    """

    executor_id: str
    attempt: int | None = None
    principal_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an executor reports when a run ends."""

    status: JobStatus  # COMPLETED, FAILED or CANCELLED
    exit_code: int | None = None
    error_message: str | None = None
    result: Any = None
    stdout: str = ""
    stderr: str = ""
    retry: bool = False  # ask for another attempt when retries remain
    leftover_processes: int | None = None  # killed in its cgroup after the main one ended


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    executor_id: str
    principal_id: str
    executor_ip: str | None = None
    labels: frozenset[str] = frozenset()
    limit: int = 1
    project_id: str | None = None
    runnable_only: bool = False  # corral workers take only jobs with something to execute
    commands_only: bool = False  # CMD Executor workers run shell lines, never binaries

    @property
    def least_runnable(self) -> int:
        """The smallest ``Job.runnable_level`` this claimer can take."""
        if self.commands_only:
            return RUNNABLE_COMMAND
        return RUNNABLE_ANY if self.runnable_only else RUNNABLE_NONE


@dataclass(frozen=True, slots=True)
class JobDraft:
    """A submission as a dialect parsed it; the service adds id, owner and time."""

    spec: JobSpec
    priority: int
    max_retries: int = DEFAULT_MAX_RETRIES
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    project_id: str | None = None
    batch_id: str | None = None
    task_type_id: str | None = None
    dedupe_key: str | None = None
    depends_on: tuple[str, ...] = ()
    run_if: RunIf = RunIf.SUCCESS
    workflow_id: str | None = None
    job_id: str | None = None  # given by a workflow, whose jobs name each other's ids

    def to_new_job(self, job_id: str, owner_id: str, now: float) -> NewJob:
        return NewJob(
            id=job_id,
            spec=self.spec,
            priority=self.priority,
            owner_id=owner_id,
            created_at=now,
            max_retries=self.max_retries,
            lease_seconds=self.lease_seconds,
            project_id=self.project_id,
            batch_id=self.batch_id,
            task_type_id=self.task_type_id,
            dedupe_key=self.dedupe_key,
            depends_on=self.depends_on,
            run_if=self.run_if,
            workflow_id=self.workflow_id,
        )
