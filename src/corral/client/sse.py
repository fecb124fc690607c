"""Server-Sent Events of ``/jobs/{id}/output/follow`` turned into ``OutputEvent``/``EndEvent``.

A line-at-a-time parser, so the sync and the async client feed it the same way.
"""

from __future__ import annotations

import json

from corral.client.events import EndEvent, OutputEvent


class SseParser:
    """Feed it lines without their newline; it answers an event when one is complete.
    Comments (keepalives) and unknown event kinds are skipped."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> OutputEvent | EndEvent | None:
        if line == "":
            kind, data = self._event, self._data
            self._event, self._data = "message", []
            return _event(kind, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def _event(kind: str, payload: str) -> OutputEvent | EndEvent | None:
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if kind == "output":
        return OutputEvent(
            str(body.get("stream", "stdout")), int(body.get("offset", 0)), str(body.get("data", ""))
        )
    if kind == "end":
        return EndEvent(
            str(body.get("status", "")), body.get("exit_code"), body.get("error_message")
        )
    return None
