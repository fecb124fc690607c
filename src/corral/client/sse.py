"""Server-Sent Events of ``/jobs/{id}/output/follow`` turned into ``OutputEvent``/``EndEvent``.

A line-at-a-time parser, so the sync and the async client feed it the same way. It
keeps the last event id the stream gave (``last_id``): a follower cut off sends it back
as ``Last-Event-ID`` to go on from there (``following.py``).
"""

from __future__ import annotations

import json

from corral.client.events import EndEvent, OutputEvent


class SseParser:
    """Feed it lines without their newline; it answers an event when one is complete.
    Comments (keepalives) and unknown event kinds are skipped. One parser per
    connection: an event cut off half-way is dropped with it, while ``last_id``
    (the id of the last whole event, as the SSE spec keeps it) is carried over."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self._id = last_id
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> OutputEvent | EndEvent | None:
        if line == "":
            kind, data = self._event, self._data
            self._event, self._data = "message", []
            self.last_id = self._id
            return _event(kind, "\n".join(data)) if data else None
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
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
