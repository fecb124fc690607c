"""Job output over real HTTP: streamed chunks, reads from offsets, the cap, and SSE follow."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_native_api import (
    API,
    assert_error,
    claim_one,
    details,
    submit,
)
from tests.live import LiveServer, run_server


def post_output(
    http: httpx.Client, job_id: str, data: str, stream: str = "stdout", **extra: Any
) -> httpx.Response:
    call = {"executor_id": "worker-1", "attempt": 1, "stream": stream, "data": data, **extra}
    return http.post(f"{API}/jobs/{job_id}/output", json=call)


def read_output(http: httpx.Client, job_id: str, **params: Any) -> dict[str, Any]:
    answer = http.get(f"{API}/jobs/{job_id}/output", params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def running_job(http: httpx.Client) -> str:
    job_id: str = submit(http)["id"]
    claim_one(http, "worker-1")
    return job_id


def test_output_is_appended_and_read_from_offsets(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = running_job(http)
        first = post_output(http, job_id, "hello ")
        assert first.status_code == 200, first.text
        assert first.json() == {"stream": "stdout", "size": 6, "truncated": False}
        second = post_output(http, job_id, "world")
        assert second.json() == {"stream": "stdout", "size": 11, "truncated": False}
        assert post_output(http, job_id, "oops", stream="stderr").json()["size"] == 4

        whole = read_output(http, job_id)
        assert whole == {
            "stream": "stdout",
            "offset": 0,
            "data": "hello world",
            "next_offset": 11,
            "size": 11,
            "truncated": False,
            "attempt": 1,
            "status": "running",
        }
        tail = read_output(http, job_id, offset=6)
        assert (tail["data"], tail["next_offset"]) == ("world", 11)
        middle = read_output(http, job_id, offset=3, limit=4)
        assert (middle["data"], middle["offset"], middle["next_offset"]) == ("lo w", 3, 7)
        past_end = read_output(http, job_id, offset=11)
        assert (past_end["data"], past_end["next_offset"]) == ("", 11)
        err = read_output(http, job_id, stream="stderr")
        assert (err["data"], err["size"]) == ("oops", 4)

        # output sent with the completion is appended to what was streamed
        done = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "attempt": 1, "stdout": "!", "exit_code": 0},
        )
        assert done.status_code == 200
        job = details(http, job_id)
        final = read_output(http, job_id)
    assert (job["stdout"], job["stderr"]) == ("hello world!", "oops")
    assert (final["data"], final["status"]) == ("hello world!", "completed")


def test_reading_output_pages_through_a_large_stream(live_server: LiveServer) -> None:
    text = "".join(f"line {i}\n" for i in range(2000))
    with live_server.client() as http:
        job_id = running_job(http)
        for start in range(0, len(text), 5000):
            assert post_output(http, job_id, text[start : start + 5000]).status_code == 200
        pieces, offset = [], 0
        while True:
            page = read_output(http, job_id, offset=offset, limit=4096)
            if not page["data"]:
                break
            assert len(page["data"]) <= 4096
            pieces.append(page["data"])
            offset = page["next_offset"]
    assert "".join(pieces) == text
    assert offset == len(text)


def test_output_of_a_new_attempt_starts_afresh(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = running_job(http)
        post_output(http, job_id, "first try")
        released = http.post(
            f"{API}/jobs/{job_id}/release", json={"executor_id": "worker-1", "attempt": 1}
        )
        assert released.status_code == 200
        claim_one(http, "worker-1")
        post_output(http, job_id, "second", attempt=2)
        page = read_output(http, job_id)
    assert (page["data"], page["attempt"], page["size"]) == ("second", 2, 6)


def test_output_from_stale_attempt_or_other_executor_is_409(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = running_job(http)
        assert_error(post_output(http, job_id, "x", executor_id="worker-2"), 409)
        assert_error(post_output(http, job_id, "x", attempt=2), 409)
        assert read_output(http, job_id)["size"] == 0


def test_output_for_unknown_or_finished_job(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(post_output(http, "missing", "x"), 404)
        assert_error(http.get(f"{API}/jobs/missing/output"), 404)
        job_id = running_job(http)
        http.put(f"{API}/jobs/{job_id}/complete", json={"executor_id": "worker-1"})
        assert_error(post_output(http, job_id, "late"), 400)


def test_reading_output_needs_read_rights(live_server: LiveServer) -> None:
    with live_server.client() as http:
        job_id = running_job(http)
        post_output(http, job_id, "secret")
    with live_server.client(live_server.token("viewer")) as viewer:
        assert read_output(viewer, job_id)["data"] == "secret"
        assert_error(post_output(viewer, job_id, "x"), 403)


def test_output_cap_truncates_each_stream(tmp_path: Path) -> None:
    with run_server(tmp_path / "data", output_cap=2048) as server, server.client() as http:
        job_id = running_job(http)
        first = post_output(http, job_id, "a" * 1500)
        assert first.json() == {"stream": "stdout", "size": 1500, "truncated": False}
        second = post_output(http, job_id, "b" * 1000)
        assert second.json() == {"stream": "stdout", "size": 2048, "truncated": True}
        third = post_output(http, job_id, "c" * 10)
        assert third.json() == {"stream": "stdout", "size": 2048, "truncated": True}
        # the other stream has its own cap
        assert post_output(http, job_id, "e" * 100, stream="stderr").json()["truncated"] is False
        page = read_output(http, job_id, limit=65536)
        assert page["data"] == "a" * 1500 + "b" * 548
        assert (page["size"], page["truncated"]) == (2048, True)
        done = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "stdout": "more", "stderr": "z" * 5000},
        )
        assert done.status_code == 200
        job = details(http, job_id)
    assert job["stdout"] == "a" * 1500 + "b" * 548
    assert job["stdout_truncated"] is True
    assert job["stderr"] == "e" * 100 + "z" * 1948
    assert job["stderr_truncated"] is True


# --- SSE follow ---------------------------------------------------------------------------


def read_events(
    server: LiveServer, job_id: str, into: list[tuple[str, Any]], connected: threading.Event
) -> None:
    """Collect ``(event, data)`` pairs from the follow stream until its ``end`` event."""
    with (
        server.client() as http,
        http.stream("GET", f"{API}/jobs/{job_id}/output/follow", timeout=30) as answer,
    ):
        into.append(("status", answer.status_code))
        into.append(("content-type", answer.headers["content-type"]))
        connected.set()
        event, data = "message", ""
        for line in answer.iter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif line == "":
                if data:
                    into.append((event, json.loads(data)))
                    if event == "end":
                        return
                event, data = "message", ""


def test_follow_streams_output_then_end(live_server: LiveServer) -> None:
    events: list[tuple[str, Any]] = []
    connected = threading.Event()
    with live_server.client() as http:
        job_id = running_job(http)
        reader = threading.Thread(target=read_events, args=(live_server, job_id, events, connected))
        reader.start()
        assert connected.wait(10)
        assert post_output(http, job_id, "line one\n").status_code == 200
        # wait until the follower has seen the first chunk before sending the rest
        deadline = time.monotonic() + 10
        while not any(kind == "output" for kind, _ in events):
            assert time.monotonic() < deadline, events
            time.sleep(0.01)
        assert post_output(http, job_id, "problem\n", stream="stderr").status_code == 200
        assert post_output(http, job_id, "line two\n").status_code == 200
        done = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "attempt": 1, "exit_code": 0},
        )
        assert done.status_code == 200
        reader.join(timeout=20)
    assert not reader.is_alive()
    assert events[0] == ("status", 200)
    assert events[1][1].startswith("text/event-stream")
    outputs = [data for kind, data in events if kind == "output"]
    assert outputs[0] == {"stream": "stdout", "offset": 0, "data": "line one\n"}
    stdout = "".join(o["data"] for o in outputs if o["stream"] == "stdout")
    stderr = "".join(o["data"] for o in outputs if o["stream"] == "stderr")
    assert (stdout, stderr) == ("line one\nline two\n", "problem\n")
    assert all(o["offset"] >= 0 for o in outputs)
    kind, end = events[-1]
    assert kind == "end"
    assert end["status"] == "completed" and end["exit_code"] == 0
    assert [k for k, _ in events].count("end") == 1


def test_follow_of_a_finished_job_replays_output_and_ends(live_server: LiveServer) -> None:
    events: list[tuple[str, Any]] = []
    with live_server.client() as http:
        job_id = running_job(http)
        post_output(http, job_id, "done\n")
        http.put(f"{API}/jobs/{job_id}/fail", json={"executor_id": "worker-1", "exit_code": 7})
    read_events(live_server, job_id, events, threading.Event())
    assert events[2:] == [
        ("output", {"stream": "stdout", "offset": 0, "data": "done\n"}),
        ("end", {"status": "failed", "exit_code": 7, "error_message": None}),
    ]


def test_follow_of_a_cancelled_pending_job_ends_at_once(live_server: LiveServer) -> None:
    events: list[tuple[str, Any]] = []
    with live_server.client() as http:
        job_id = submit(http)["id"]
        http.delete(f"{API}/jobs/{job_id}")
    read_events(live_server, job_id, events, threading.Event())
    assert [k for k, _ in events[2:]] == ["end"]
    assert events[-1][1]["status"] == "cancelled"


def test_follow_of_unknown_job_is_404(live_server: LiveServer) -> None:
    with live_server.client() as http:
        assert_error(http.get(f"{API}/jobs/missing/output/follow"), 404)


@pytest.mark.parametrize("role", ["worker"])
def test_follow_needs_read_rights(live_server: LiveServer, role: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
    with live_server.client(live_server.token(role)) as http:
        assert_error(http.get(f"{API}/jobs/{job_id}/output/follow"), 403)


def stream_of(
    server: LiveServer, job_id: str, headers: dict[str, str] | None = None, upto: int = 0
) -> list[tuple[str, str, Any]]:
    """``(id, event, data)`` of each event of the follow stream, up to the end event (or
    the ``upto``th event)."""
    found: list[tuple[str, str, Any]] = []
    with (
        server.client() as http,
        http.stream(
            "GET", f"{API}/jobs/{job_id}/output/follow", headers=headers, timeout=30
        ) as answer,
    ):
        assert answer.status_code == 200
        fields: dict[str, str] = {}
        for line in answer.iter_lines():
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
            elif not line and fields:
                found.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
                if fields["event"] == "end" or len(found) == upto:
                    return found
                fields = {}
    return found


def test_follow_goes_on_after_the_last_event_id(live_server: LiveServer) -> None:
    """Each output event's id is the position after it; sent back as Last-Event-ID (as a
    follower cut off does, to any replica), the stream goes on right after that event."""
    with live_server.client() as http:
        job_id = running_job(http)
        post_output(http, job_id, "one\n")
        post_output(http, job_id, "err\n", stream="stderr")
        whole = stream_of(live_server, job_id, upto=2)  # the job still runs
        post_output(http, job_id, "two\n", offset=4)
        http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "attempt": 1, "exit_code": 0},
        )
    assert [event_id for event_id, _, _ in whole[:2]] == ["1:4:0", "1:4:4"]
    after_first = stream_of(live_server, job_id, {"Last-Event-ID": "1:4:0"})
    assert [(kind, data.get("data")) for _, kind, data in after_first] == [
        ("output", "two\n"),  # each pass reads stdout, then stderr
        ("output", "err\n"),
        ("end", None),
    ]
    assert [data["offset"] for _, kind, data in after_first if kind == "output"] == [4, 0]
    assert after_first[-1][0] == ""  # the end event carries no id


def test_follow_after_an_earlier_attempts_event_replays_the_current_attempt(
    live_server: LiveServer,
) -> None:
    with live_server.client() as http:
        job_id = running_job(http)
        post_output(http, job_id, "first try")
        http.post(f"{API}/jobs/{job_id}/release", json={"executor_id": "worker-1", "attempt": 1})
        claim_one(http, "worker-1")
        post_output(http, job_id, "second", attempt=2)
        http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "attempt": 2, "exit_code": 0},
        )
    events = stream_of(live_server, job_id, {"Last-Event-ID": "1:9:0"})
    assert events[0] == ("2:6:0", "output", {"stream": "stdout", "offset": 0, "data": "second"})


@pytest.mark.parametrize(
    "event_id", ["x", "1:2", "1:2:-3", "1:2:3:4", "1:\u00b2:0", "1:2:99999999999999999999"]
)
def test_follow_refuses_an_event_id_it_never_sent(live_server: LiveServer, event_id: str) -> None:
    with live_server.client() as http:
        job_id = submit(http)["id"]
        http.delete(f"{API}/jobs/{job_id}")  # a stream that would end at once, were it let
        answer = http.get(
            f"{API}/jobs/{job_id}/output/follow",
            headers={"Last-Event-ID": event_id.encode("latin-1")},
        )
    assert assert_error(answer, 400)["context"]["field"] == "Last-Event-ID"


def test_follow_never_cuts_a_character_in_two(live_server: LiveServer) -> None:
    """The follow reads the stored output 64 KiB at a time: a read that ends inside a
    two-byte character must not send its first byte alone (two U+FFFD in its place)."""
    text = "x" + "é" * 40_000  # 80,001 bytes: the first read ends inside an "é"
    events: list[tuple[str, Any]] = []
    with live_server.client() as http:
        job_id = running_job(http)
        assert post_output(http, job_id, text).status_code == 200
        done = http.put(
            f"{API}/jobs/{job_id}/complete",
            json={"executor_id": "worker-1", "attempt": 1, "exit_code": 0},
        )
        assert done.status_code == 200
    read_events(live_server, job_id, events, threading.Event())
    outputs = [data for kind, data in events if kind == "output"]
    assert len(outputs) > 1  # it did take more than one read
    assert "".join(o["data"] for o in outputs) == text
    assert [o["offset"] for o in outputs] == [
        sum(len(o["data"].encode()) for o in outputs[:i]) for i in range(len(outputs))
    ]


def test_pages_of_output_join_into_the_text_whatever_their_size(live_server: LiveServer) -> None:
    """A page whose byte limit ends inside a character leaves that character to the next
    page; a limit too small for any whole character still moves on."""
    text = "é€😀" * 50
    with live_server.client() as http:
        job_id = running_job(http)
        assert post_output(http, job_id, text).status_code == 200
        for limit in (1, 3, 5, 64):
            pieces, offset = [], 0
            while True:
                page = read_output(http, job_id, offset=offset, limit=limit)
                assert page["next_offset"] > offset or page["next_offset"] >= page["size"]
                pieces.append(page["data"])
                offset = page["next_offset"]
                if offset >= page["size"]:
                    break
            if limit >= 4:  # room for the longest character: every page holds whole ones
                assert "".join(pieces) == text, limit
            assert offset == len(text.encode())
