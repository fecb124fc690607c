"""Schedules in either store: row <-> domain conversion.

A schedule's job is kept as the draft a submit body turned into (spec as the jobs
table keeps it, plus the submit's other fields), so firing it needs no API code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from corral.domain.jobs import JobDraft
from corral.domain.schedules import CatchUp, Overlap, Schedule
from corral.store.rows import spec_from_json, spec_to_json

SCHEDULE_COLUMNS = (
    "id, name, owner_id, cron, timezone, job, overlap, catch_up, jitter_seconds, paused, "
    "created_at, updated_at, last_tick, next_fire_at"
)
SCHEDULE_FIELDS = tuple(c.strip() for c in SCHEDULE_COLUMNS.split(","))


def draft_to_json(draft: JobDraft) -> str:
    doc = {
        "spec": orjson.loads(spec_to_json(draft.spec)),
        "priority": draft.priority,
        "max_retries": draft.max_retries,
        "lease_seconds": draft.lease_seconds,
        "project_id": draft.project_id,
        "batch_id": draft.batch_id,
    }
    return orjson.dumps(doc).decode()


def draft_from_json(text: str) -> JobDraft:
    doc = orjson.loads(text)
    return JobDraft(
        spec=spec_from_json(orjson.dumps(doc["spec"]).decode()),
        priority=doc["priority"],
        max_retries=doc["max_retries"],
        lease_seconds=doc["lease_seconds"],
        project_id=doc.get("project_id"),
        batch_id=doc.get("batch_id"),
    )


def schedule_params(s: Schedule) -> tuple[Any, ...]:
    """Values in ``SCHEDULE_COLUMNS`` order."""
    return (
        s.id,
        s.name,
        s.owner_id,
        s.cron,
        s.timezone,
        draft_to_json(s.job),
        s.overlap.value,
        s.catch_up.value,
        s.jitter_seconds,
        int(s.paused),
        s.created_at,
        s.updated_at,
        s.last_tick,
        s.next_fire_at,
    )


def schedule_from_row(row: Mapping[str, Any]) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        cron=row["cron"],
        timezone=row["timezone"],
        job=draft_from_json(row["job"]),
        overlap=Overlap(row["overlap"]),
        catch_up=CatchUp(row["catch_up"]),
        jitter_seconds=row["jitter_seconds"],
        paused=bool(row["paused"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_tick=row["last_tick"],
        next_fire_at=row["next_fire_at"],
    )
