"""What the SDK returns: typed, immutable Pydantic models of the native API's answers.

Shared by ``CorralClient`` and ``AsyncCorralClient``. Fields the server adds after
this SDK was written are kept (``extra="allow"``) and reachable as attributes, so an
older SDK never drops data. A job from ``list`` carries the summary fields only;
the others are then ``None`` or empty: ``get`` returns the whole job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# follow's events live in events.py, free of Pydantic for JsonClient; the typed
# clients answer them beside these models.
from corral.client.events import EndEvent as EndEvent
from corral.client.events import OutputEvent as OutputEvent

FINISHED = frozenset({"completed", "failed", "cancelled"})


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_default(cls, data: Any) -> Any:
        """A ``null`` for an optional field means its default (``[]``, ``{}``, False),
        so a server that leaves a field empty never makes a valid answer unreadable."""
        if not isinstance(data, dict):
            return data
        optional = {name for name, spec in cls.model_fields.items() if not spec.is_required()}
        return {k: v for k, v in data.items() if v is not None or k not in optional}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict, as the server sent it (extra fields included)."""
        return self.model_dump(mode="json")


class Attempt(Model):
    attempt: int
    status: str
    executor_id: str | None = None
    executor_ip: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_code: int | None = None
    error_message: str | None = None
    leftover_processes: int | None = None


class Job(Model):
    """A job: its spec, its state, and (from ``get``) its output and attempts."""

    id: str
    status: str
    type: str | None = None
    priority: str | None = None
    command: str | None = None
    binary_url: str | None = None
    binary_sha256: str | None = None
    arguments: list[str] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    env_variables: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)  # values always masked
    working_directory: str | None = None
    input_file_id: str | None = None
    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    timeout: float | None = None
    max_retries: int | None = None
    lease_seconds: float | None = None
    retention_days: int | None = None  # kept this long once finished; None: the server's
    project_id: str | None = None
    batch_id: str | None = None
    executor_id: str | None = None
    attempt: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    exit_code: int | None = None
    error_message: str | None = None
    result: Any = None
    pending_reason: str | None = None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    held: bool = False  # pending, waiting for a slot of its concurrency key
    stdout: str | None = None
    stderr: str | None = None
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        """Completed, failed or cancelled: nothing more will happen to it."""
        return self.status in FINISHED

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"


class Cancellation(Model):
    """The answer to ``cancel``: a pending job is cancelled at once, a running one is
    asked to stop (``cancel_requested``)."""

    id: str
    status: str
    cancel_requested: bool = False


class Executor(Model):
    """A worker as the dispatcher sees it."""

    executor_id: str
    state: str
    hostname: str | None = None
    ip: str | None = None
    labels: list[str] = Field(default_factory=list)
    concurrency: int | None = None
    running_job_ids: list[str] = Field(default_factory=list)
    current_job_id: str | None = None
    jobs_completed: int = 0
    last_heartbeat: datetime | None = None
    registered_at: datetime | None = None
    isolation: str | None = None


class StoredFile(Model):
    """An uploaded input archive, or (with ``job_id``, ``attempt``, ``path``) an artifact."""

    id: str
    filename: str | None = None
    size: int
    sha256: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    job_id: str | None = None
    attempt: int | None = None
    path: str | None = None


class OutputPage(Model):
    """One page of a stream's stored output, from ``offset`` to ``next_offset``."""

    stream: str
    offset: int
    data: str
    next_offset: int
    size: int
    truncated: bool = False
    attempt: int | None = None
    status: str | None = None

    @property
    def at_end(self) -> bool:
        return self.next_offset <= self.offset or self.next_offset >= self.size
