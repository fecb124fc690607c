"""Request bodies of TaskDriver's projects, task types and tasks, with its camelCase names.

Types and sizes are checked here (a 422 with ``validationDetails``); the rules
of the domain (name pattern, ranges, template variables) are checked by the
domain, which names the field the same way. Unknown fields are ignored, as
TaskDriver's clients may send more than this document lists.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from corral.api.ranges import LEASE_MINUTES, RETRIES
from corral.api.storable import storable
from corral.domain.projects import DuplicateHandling, ProjectStatus

LONG_TEXT = 100_000
ID_TEXT = 200


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    @model_validator(mode="after")
    def _fits_the_store(self) -> Self:
        return storable(self)

    def given(self, *names: str) -> dict[str, Any]:
        """The named fields the body actually carried, null ones left out."""
        return {
            n: getattr(self, n)
            for n in names
            if n in self.model_fields_set and getattr(self, n) is not None
        }


class ConfigBody(CamelModel):
    default_max_retries: int | None = Field(default=None, ge=0, le=RETRIES)
    default_lease_duration_minutes: float | None = Field(default=None, gt=0, le=LEASE_MINUTES)
    reaper_interval_minutes: float | None = Field(default=None, gt=0, le=LEASE_MINUTES)

    def changes(self) -> dict[str, Any]:
        """In ``ProjectConfig``'s own names."""
        given = self.given(
            "default_max_retries", "default_lease_duration_minutes", "reaper_interval_minutes"
        )
        if "default_lease_duration_minutes" in given:
            given["default_lease_minutes"] = given.pop("default_lease_duration_minutes")
        return given


class ProjectBody(CamelModel):
    """Create (``name`` required, checked by the route) and update (every field optional)."""

    name: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=LONG_TEXT)
    instructions: str | None = Field(default=None, max_length=LONG_TEXT)
    status: Literal["active", "closed"] | None = None
    config: ConfigBody | None = None
    agent_login: bool | None = None
    open_agent_login: bool | None = None

    def changes(self) -> dict[str, Any]:
        """In ``Project``'s own names; ``config`` is a partial dict of ``ProjectConfig``'s."""
        values = self.given(
            "name", "description", "instructions", "agent_login", "open_agent_login"
        )
        if self.status is not None:
            values["status"] = ProjectStatus(self.status)
        if self.config is not None:
            values["config"] = self.config.changes()
        return values


class TaskTypeBody(CamelModel):
    name: str | None = Field(default=None, max_length=1000)
    template: str | None = Field(default=None, max_length=LONG_TEXT)
    variables: list[str] | None = Field(default=None, max_length=100)
    duplicate_handling: Literal["ignore", "allow", "fail"] | None = None
    max_retries: int | None = Field(default=None, ge=0, le=RETRIES)
    lease_duration_minutes: float | None = Field(default=None, gt=0, le=LEASE_MINUTES)

    def changes(self) -> dict[str, Any]:
        """In ``TaskType``'s own names. ``maxRetries``/``leaseDurationMinutes`` sent as null
        mean "use the project's default"."""
        values = self.given("name", "template")
        if self.duplicate_handling is not None:
            values["duplicate_handling"] = DuplicateHandling(self.duplicate_handling)
        if self.variables is not None:
            values["variables"] = tuple(self.variables)
        for name, core in (
            ("max_retries", "max_retries"),
            ("lease_duration_minutes", "lease_minutes"),
        ):
            if name in self.model_fields_set:
                values[core] = getattr(self, name)
        return values


class TaskBody(CamelModel):
    type_id: str = Field(min_length=1, max_length=ID_TEXT)
    instructions: str | None = Field(default=None, max_length=LONG_TEXT)
    variables: dict[str, Any] = Field(default_factory=dict, max_length=1000)
    batch_id: str | None = Field(default=None, min_length=1, max_length=ID_TEXT)
    command: str | None = Field(default=None, max_length=65536)
    priority: Literal["high", "normal", "low"] = "normal"
    timeout: int = Field(default=3600, ge=1, le=86400)


class BulkBody(CamelModel):
    tasks: list[TaskBody] = Field(min_length=1, max_length=1000)
    batch_id: str | None = Field(default=None, min_length=1, max_length=ID_TEXT)


class TaskUpdateBody(CamelModel):
    instructions: str | None = Field(default=None, max_length=LONG_TEXT)
    variables: dict[str, Any] | None = Field(default=None, max_length=1000)
    command: str | None = Field(default=None, max_length=65536)

    def changes(self) -> dict[str, Any]:
        """``command`` sent as null takes the command away (the task waits for an agent)."""
        values = self.given("instructions", "variables")
        if "command" in self.model_fields_set:
            values["command"] = self.command
        return values
