"""How one replica tells the others what happened to a job, in a few bytes.

Job events (started, output, finished) travel between replicas inside the same
NOTIFY payloads as the wake-up topics (``relay.py``), as space-free descriptors:

    ev:ORIGIN:s:AT:ATTEMPT:JOB_ID                       the attempt started
    ev:ORIGIN:f:AT:JOB_ID                               the job reached a final state
    ev:ORIGIN:o:AT:ATTEMPT:STREAM:START:END:JOB_ID      output bytes [START, END) stored

A descriptor carries no output and no job: those are in the database, and only a
replica with a watcher reads them (``event_relay.py``), so a replica nobody
watches pays for the descriptor and nothing else. ``ORIGIN`` names the replica
that wrote it: PostgreSQL delivers a NOTIFY to its sender too, which must not
publish its own events twice. The job id comes last, so whatever it holds
(ids hold no space) cannot shift the fields before it.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ev:"
STARTED, FINISHED, OUTPUT = "s", "f", "o"


@dataclass(frozen=True, slots=True)
class Stored:
    """Where published output lies in the store: ``attempt``'s bytes [start, end)."""

    attempt: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Descriptor:
    origin: str
    kind: str  # STARTED, FINISHED or OUTPUT
    at: float
    job_id: str
    attempt: int = 0
    stream: str = ""
    start: int = 0
    end: int = 0


def started(origin: str, job_id: str, attempt: int, at: float) -> str:
    return f"{PREFIX}{origin}:{STARTED}:{at:.6f}:{attempt}:{job_id}"


def finished(origin: str, job_id: str, at: float) -> str:
    return f"{PREFIX}{origin}:{FINISHED}:{at:.6f}:{job_id}"


def output(
    origin: str, job_id: str, attempt: int, stream: str, start: int, end: int, at: float
) -> str:
    return f"{PREFIX}{origin}:{OUTPUT}:{at:.6f}:{attempt}:{stream}:{start}:{end}:{job_id}"


def parse(text: str) -> Descriptor | None:
    """The descriptor, or None for anything malformed (a newer replica's, say)."""
    if not text.startswith(PREFIX):
        return None
    head = text[len(PREFIX) :].split(":", 2)
    if len(head) != 3:
        return None
    origin, kind, rest = head
    try:
        if kind == STARTED:
            at, attempt, job_id = rest.split(":", 2)
            return Descriptor(origin, kind, float(at), job_id, int(attempt))
        if kind == FINISHED:
            at, job_id = rest.split(":", 1)
            return Descriptor(origin, kind, float(at), job_id)
        if kind == OUTPUT:
            at, attempt, stream, start, end, job_id = rest.split(":", 5)
            return Descriptor(
                origin, kind, float(at), job_id, int(attempt), stream, int(start), int(end)
            )
    except ValueError:
        return None
    return None
