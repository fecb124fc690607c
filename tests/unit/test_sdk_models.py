"""The SDK's models read what the server sends, nulls and fields added later included."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.client import Job, OutputPage


def test_item1_nulls_take_the_default_and_new_fields_are_kept() -> None:
    job = Job.model_validate(
        {
            "id": "j1",
            "status": "running",
            "labels": None,
            "cancel_requested": None,
            "created_at": "2026-12-03T01:02:03.456Z",
            "added_by_a_newer_server": {"x": 1},
        }
    )
    assert job.labels == [] and job.cancel_requested is False and not job.finished
    assert job.created_at == datetime(2026, 12, 3, 1, 2, 3, 456000, tzinfo=UTC)
    assert job.to_dict()["added_by_a_newer_server"] == {"x": 1}
    page = OutputPage(stream="stdout", offset=0, data="", next_offset=0, size=0)
    assert page.at_end
