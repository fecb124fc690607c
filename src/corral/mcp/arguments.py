"""The arguments many tools share, with the description an agent reads in the schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ProjectRef = Annotated[str, Field(description="The project's id or its name")]
OptionalProjectRef = Annotated[
    str | None, Field(description="The project's id or name (optional, for TaskDriver clients)")
]
TypeRef = Annotated[str, Field(description="The task type's id, or its name in the project")]
OptionalTypeRef = Annotated[
    str | None, Field(description="The task type's id or name (default: the project's first)")
]
TaskId = Annotated[str, Field(description="The task's id (from get_next_task or list_tasks)")]
JobId = Annotated[str, Field(description="The job's id (from submit_command or list_jobs)")]
AgentName = Annotated[
    str | None,
    Field(
        description="The agent's name; left out, this session's name (the one last given "
        "to get_next_task) is used"
    ),
]
