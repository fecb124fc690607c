"""Project and task type rows <-> domain, shared by both adapters (see ``rows``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from corral.domain.projects import (
    DuplicateHandling,
    Project,
    ProjectConfig,
    ProjectStatus,
    TaskType,
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
