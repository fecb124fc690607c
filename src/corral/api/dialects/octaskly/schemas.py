"""Octaskly's task body, snake_case as documented; it becomes a domain draft and nothing else.

Unknown fields are ignored rather than refused, as Octaskly's own server does
with extra JSON keys; the documented fields are checked strictly (a timeout of
``"60"`` or ``60.5`` is a 400, not a silent conversion).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from corral.domain.files import relative_path
from corral.domain.jobs import DEFAULT_TIMEOUT, MAX_TIMEOUT, JobDraft, JobSpec
from corral.domain.priority import NORMAL
from corral.errors import InvalidInput

MAX_COMMAND = 65536
MAX_PATHS = 1000


def _utf8(text: str, what: str) -> str:
    """Lone surrogates parse as JSON but cannot be stored: refuse them here, as a 400."""
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode text") from None
    return text


class CreateTask(BaseModel):
    model_config = ConfigDict(extra="ignore")

    command: StrictStr = Field(max_length=MAX_COMMAND)
    timeout: StrictInt = Field(default=DEFAULT_TIMEOUT, ge=1, le=MAX_TIMEOUT)
    inputs: list[StrictStr] = Field(default_factory=list, max_length=MAX_PATHS)
    outputs: list[StrictStr] = Field(default_factory=list, max_length=MAX_PATHS)
    # Extension: an archive from POST /api/v1/files, extracted into the task's
    # directory before the run, so that ``inputs`` have somewhere to come from.
    input_file_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("command")
    @classmethod
    def _a_command(cls, command: str) -> str:
        if not command.strip():
            raise ValueError("command must not be empty")
        if "\x00" in command:
            raise ValueError("command may not contain NUL bytes")
        return _utf8(command, "command")

    @field_validator("inputs", "outputs")
    @classmethod
    def _text_paths(cls, paths: list[str]) -> list[str]:
        return [_utf8(path, "path") for path in paths]

    def to_draft(self) -> JobDraft:
        """Paths are checked now, with the worker's own rule, so a bad one is a 400 at
        submit rather than a task that fails later."""
        for field in ("inputs", "outputs"):
            for path in getattr(self, field):
                try:
                    relative_path(path, field)
                except InvalidInput as exc:
                    raise InvalidInput(f"{exc.message}: {path!r}", field=field) from None
        spec = JobSpec(
            command=self.command,
            timeout=self.timeout,
            inputs=tuple(self.inputs),
            outputs=tuple(self.outputs),
            input_file_id=self.input_file_id,
        )
        return JobDraft(spec=spec, priority=NORMAL)
