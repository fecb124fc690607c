"""Job-event descriptors: what one replica writes, another reads back exactly."""

from __future__ import annotations

from corral.services import event_wire
from corral.services.event_wire import Descriptor


def test_each_kind_reads_back_as_written() -> None:
    assert event_wire.parse(event_wire.started("ab12", "job-1", 3, 1700000000.25)) == (
        Descriptor("ab12", "s", 1700000000.25, "job-1", attempt=3)
    )
    assert event_wire.parse(event_wire.finished("ab12", "job-1", 5.5)) == (
        Descriptor("ab12", "f", 5.5, "job-1")
    )
    text = event_wire.output("ab12", "job-1", 2, "stderr", 100, 164, 7.0)
    assert event_wire.parse(text) == Descriptor("ab12", "o", 7.0, "job-1", 2, "stderr", 100, 164)
    assert " " not in text  # descriptors share a NOTIFY payload, separated by spaces


def test_a_job_id_with_colons_stays_whole() -> None:
    text = event_wire.output("ab12", "wf:build:3", 1, "stdout", 0, 10, 1.0)
    found = event_wire.parse(text)
    assert found is not None and found.job_id == "wf:build:3" and found.end == 10


def test_anything_else_is_not_a_descriptor() -> None:
    for text in ("job:abc", "ev:", "ev:ab12", "ev:ab12:x:1.0:job", "ev:ab12:s:soon:1:job"):
        assert event_wire.parse(text) is None
