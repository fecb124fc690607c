"""TaskDriver's projects and task types, as the core keeps them.

A project groups tasks and gives them defaults (retries, lease length); a task
type is a named template whose ``{{variable}}`` placeholders a task fills in,
and it says what a duplicate task does (``ignore``: answer with the existing
one, ``allow``: create it anyway, ``fail``: 409). Tasks themselves are ordinary
jobs carrying ``project_id`` and ``task_type_id``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from corral.errors import InvalidInput

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class DuplicateHandling(StrEnum):
    IGNORE = "ignore"
    ALLOW = "allow"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class ProjectConfig:
    default_max_retries: int = 3
    default_lease_minutes: float = 10.0
    reaper_interval_minutes: float = 1.0

    def validate(self) -> None:
        if not 0 <= self.default_max_retries <= 100:
            raise InvalidInput(
                "defaultMaxRetries must be between 0 and 100",
                field="config.defaultMaxRetries",
                value=self.default_max_retries,
            )
        if not 0 < self.default_lease_minutes <= 1440:
            raise InvalidInput(
                "defaultLeaseDurationMinutes must be between 0 and 1440",
                field="config.defaultLeaseDurationMinutes",
                value=self.default_lease_minutes,
            )
        if not 0 < self.reaper_interval_minutes <= 1440:
            raise InvalidInput(
                "reaperIntervalMinutes must be between 0 and 1440",
                field="config.reaperIntervalMinutes",
                value=self.reaper_interval_minutes,
            )


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    name: str
    created_at: float
    updated_at: float
    description: str = ""
    instructions: str = ""
    status: ProjectStatus = ProjectStatus.ACTIVE
    config: ProjectConfig = field(default_factory=ProjectConfig)
    agent_login: bool = True  # whether agents may open sessions at all
    # Whether agentName + projectId alone open a session, without an agent token: only
    # where every caller that can reach the server may act as this project's agents.
    open_agent_login: bool = False
    # Who made it: its tasks count against this principal's fair share (domain/fairness.py).
    created_by: str | None = None

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInput(
                "Project name can only contain letters, numbers, hyphens, and underscores",
                field="name",
                value=self.name,
            )
        self.config.validate()


@dataclass(frozen=True, slots=True)
class TaskType:
    id: str
    project_id: str
    name: str
    created_at: float
    updated_at: float
    template: str = ""
    variables: tuple[str, ...] = ()
    duplicate_handling: DuplicateHandling = DuplicateHandling.ALLOW
    max_retries: int | None = None  # None: the project's default
    lease_minutes: float | None = None  # None: the project's default

    def validate(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidInput(
                "Task type name can only contain letters, numbers, hyphens, and underscores",
                field="name",
                value=self.name,
            )
        for name in self.variables:
            if not _VARIABLE.match(name):
                raise InvalidInput(
                    "variable names are letters, digits and underscores, not starting with a digit",
                    field="variables",
                    value=name,
                )
        unknown = sorted(set(placeholders(self.template)) - set(self.variables))
        if unknown:
            raise InvalidInput(
                f"template uses undeclared variables: {', '.join(unknown)}",
                field="template",
                value=self.template,
            )
        if self.max_retries is not None and not 0 <= self.max_retries <= 100:
            raise InvalidInput(
                "maxRetries must be between 0 and 100", field="maxRetries", value=self.max_retries
            )
        if self.lease_minutes is not None and not 0 < self.lease_minutes <= 1440:
            raise InvalidInput(
                "leaseDurationMinutes must be between 0 and 1440",
                field="leaseDurationMinutes",
                value=self.lease_minutes,
            )


def placeholders(template: str) -> list[str]:
    """Each placeholder name once, in the order the template first uses it."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def render_template(template: str, variables: dict[str, Any]) -> str:
    """Fill every ``{{name}}``; a placeholder without a value is an error, not a blank."""
    missing = sorted({name for name in placeholders(template) if name not in variables})
    if missing:
        raise InvalidInput(
            f"missing template variables: {', '.join(missing)}", field="variables", value=missing
        )
    return _PLACEHOLDER.sub(lambda m: _text(variables[m.group(1)]), template)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _canonical(value)


def dedupe_key(type_id: str | None, instructions: str | None, variables: dict[str, Any]) -> str:
    """Two tasks are duplicates when type, instructions and variables are all equal."""
    doc = [type_id, instructions, variables]
    return hashlib.sha256(_canonical(doc).encode()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
