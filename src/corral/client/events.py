"""The events of ``follow``: plain dataclasses, so following a job needs no Pydantic.

``JsonClient`` (and with it every `corral` command) parses the output stream into
these; ``corral.client.models`` re-exports them beside the typed answers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutputEvent:
    """A piece of output from ``follow``."""

    stream: str
    offset: int
    data: str


@dataclass(frozen=True, slots=True)
class EndEvent:
    """The last event of ``follow``: how the job ended."""

    status: str
    exit_code: int | None
    error_message: str | None = None
