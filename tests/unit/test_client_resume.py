"""What a long transfer of the SDK keeps between tries: the last event id of a follow
stream, how long a follow or a download goes on trying (a clock passed in), where
a download writes until it is whole, and which answers let it go on from there."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from corral.client.downloads import Part, Received, Tries, staging
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


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_a_part_file_is_resumed_only_with_a_strong_tag_and_some_bytes(tmp_path: Path) -> None:
    part = Part(tmp_path / "a.bin.part", resumable=True)
    assert part.ask() == {}  # nothing yet
    assert part.answered(answer(200, ETag='"v1"'))
    part.path.write_bytes(b"")
    assert part.ask() == {}  # a tag, but no bytes to keep
    part.path.write_bytes(b"12345")
    assert part.ask() == {"Range": "bytes=5-", "If-Range": '"v1"'}
    assert part.answered(answer(200, ETag='W/"v2"'))  # started over, from a weak tag
    assert (part.held, part.ask()) == (0, {})  # If-Range cannot name a weak tag


def test_a_dest_written_in_place_is_never_asked_for_a_range(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.write_bytes(b"12345")
    part = Part(dest, resumable=False)
    assert part.answered(answer(200, ETag='"v1"'))
    assert part.ask() == {}


def test_only_the_rest_of_the_same_file_is_appended(tmp_path: Path) -> None:
    part = Part(tmp_path / "a.bin.part", resumable=True)
    part.answered(answer(200, ETag='"v1"'))
    part.path.write_bytes(b"12345")

    part.ask()
    assert part.answered(answer(206, Content_Range="bytes 5-9/10"))
    assert part.held == 5  # appended after the five bytes held
    part.ask()
    assert part.answered(answer(200, ETag='"v2"'))  # another version: from the start
    assert (part.held, part.etag) == (0, '"v2"')
    for refused in (answer(206, Content_Range="bytes 6-9/10"), answer(416)):
        part.etag = '"v2"'
        part.ask()
        assert not part.answered(refused)  # asked for again, whole
        assert (part.held, part.ask()) == (0, {})


def test_a_resumed_try_hashes_the_bytes_it_keeps(tmp_path: Path) -> None:
    """The digest check covers the whole file, not only the bytes of the last answer."""
    part = Part(tmp_path / "a.bin.part", resumable=True)
    part.path.write_bytes(b"hello, ")
    part.held = 5
    received = Received()
    received.sha256 = hashlib.sha256(b"hello world").hexdigest()
    with received.resume(part) as out:
        received.write(out, b" world")
    assert part.path.read_bytes() == b"hello world"
    assert received.count == 11
    received.check(httpx.Response(206, content=b""))  # no Incomplete: the digest matches
