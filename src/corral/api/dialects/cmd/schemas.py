"""Request bodies of CMD Executor's workers and jobs routes, with its camelCase names.

Unknown fields are ignored rather than refused: the document's clients send
extra metadata freely, and refusing it would break them for no gain.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from corral.api.ranges import COUNT, EXIT_CODE, MEMORY_MB
from corral.api.storable import storable
from corral.domain.jobs import MAX_CPUS, MAX_MEMORY_MB, MIN_CPUS

WORKER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="after")
    def _fits_the_store(self) -> Self:
        return storable(self)


class WorkerMetadata(CamelModel):
    """The document's metadata; anything else a worker adds is kept as given."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    os_type: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=100)


class RegisterBody(CamelModel):
    worker_id: str = Field(pattern=WORKER_ID_PATTERN)
    hostname: str | None = Field(default=None, max_length=255)
    cpu_count: int | None = Field(default=None, ge=1, le=65536)
    total_memory_mb: int | None = Field(default=None, ge=0, le=MEMORY_MB)
    metadata: WorkerMetadata = Field(default_factory=WorkerMetadata)


class HeartbeatBody(CamelModel):
    worker_id: str = Field(pattern=WORKER_ID_PATTERN)
    status: Literal["idle", "busy", "error"] | None = None
    current_job_id: str | None = None
    jobs_completed: int | None = Field(default=None, ge=0, le=COUNT)


class SubmitBody(CamelModel):
    command: str = Field(min_length=1, max_length=65536)
    file_url: str | None = Field(default=None, max_length=2048)
    working_directory: str | None = Field(default=None, max_length=1024)
    timeout: int = Field(default=3600, ge=1, le=86400)
    priority: str = "normal"
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, str] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list, max_length=100)
    max_retries: int = Field(default=3, ge=0, le=100)
    # Placement (issue 12): reserved on the worker that takes the job, as CMD Executor's
    # requiredCpu / requiredRamMb; the same as the native resources.cpus / memory_mb.
    required_cpu: float | None = Field(default=None, ge=MIN_CPUS, le=MAX_CPUS)
    required_ram_mb: int | None = Field(default=None, ge=1, le=MAX_MEMORY_MB)


class ResultBody(CamelModel):
    job_id: str = Field(min_length=1)
    worker_id: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = Field(default=None, ge=-EXIT_CODE - 1, le=EXIT_CODE)
    error: str | None = Field(default=None, max_length=10000)
    result: Any = None


class OutputBody(CamelModel):
    job_id: str = Field(min_length=1)
    data: str
    type: Literal["stdout", "stderr"] = "stdout"
    worker_id: str | None = None
