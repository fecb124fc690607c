"""What a long transfer of the SDK keeps between tries: the last event id of a follow
stream, how long a follow or a download goes on trying (a clock passed in), and where
a download writes until it is whole."""

from __future__ import annotations

from pathlib import Path

from corral.client.downloads import Received, Tries, staging
from corral.client.events import EndEvent, OutputEvent
from corral.client.sse import SseParser
from corral.client.window import RetryWindow


def feed(parser: SseParser, *lines: str) -> list[OutputEvent | EndEvent]:
    return [event for line in lines if (event := parser.feed(line)) is not None]


def test_the_parser_keeps_the_id_of_the_last_whole_event() -> None:
    parser = SseParser()
    assert parser.last_id is None
    events = feed(
        parser,
        "event: output",
        "id: 1:3:0",
        'data: {"stream": "stdout", "offset": 0, "data": "hi\\n"}',
        "",
        ": keepalive",
        "",
        "event: output",
        "id: 1:6:0",
        'data: {"stream": "stdout", "offset": 3, "data": "ho',  # the stream broke here
    )
    assert events == [OutputEvent("stdout", 0, "hi\n")]
    assert parser.last_id == "1:3:0"  # not the id of the event cut off half-way


def test_a_new_parser_starts_from_the_id_it_is_given() -> None:
    parser = SseParser("1:3:0")
    events = feed(parser, "event: end", 'data: {"status": "completed", "exit_code": 0}', "")
    assert events == [EndEvent("completed", 0)]
    assert parser.last_id == "1:3:0"  # an event without an id keeps the last one


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def window(retry_for: float, clock: Clock) -> RetryWindow:
    return RetryWindow(retry_for, clock=clock, jitter=lambda low, high: high)


def test_the_window_backs_off_and_closes_retry_for_after_the_first_failure() -> None:
    clock = Clock()
    tries = window(2.0, clock)
    pauses = []
    while (pause := tries.pause()) is not None:
        pauses.append(pause)
        clock.now += pause
    assert pauses == [0.25, 0.5, 1.0]  # a fourth would end past 100 + 2 s
    assert clock.now == 101.75


def test_progress_opens_a_new_window() -> None:
    clock = Clock()
    tries = window(1.0, clock)
    assert tries.pause() == 0.25
    clock.now += 60.0  # an hour of output later, the next replica dies too
    assert tries.pause() is None
    tries.progressed()
    assert tries.pause() == 0.25


def test_no_retry_for_means_no_second_try() -> None:
    assert window(0.0, Clock()).pause() is None


def test_a_download_goes_to_a_part_file_unless_its_dest_is_no_regular_file(
    tmp_path: Path,
) -> None:
    assert staging(tmp_path / "a.bin") == tmp_path / "a.bin.part"
    (tmp_path / "b.bin").write_bytes(b"old")
    assert staging(tmp_path / "b.bin") == tmp_path / "b.bin.part"
    assert staging(Path("/dev/null")) == Path("/dev/null")


def test_a_download_written_in_place_is_not_written_again() -> None:
    received = Received()
    assert Tries(10.0, rewinds=False).pause(received) is not None  # nothing written yet
    received.count = 1
    assert Tries(10.0, rewinds=False).pause(received) is None
    assert Tries(10.0, rewinds=True).pause(received) is not None
