"""Which replica a request goes to next, and when a failed request is tried again.

``Attempts`` is a policy of a clock and a jitter function, both passed in, so the
pauses are checked exactly, without sleeping.
"""

from __future__ import annotations

import httpx
import pytest

from corral.failover import REPEATABLE, Attempts, Endpoints, parse_urls

A, B, C = "http://a:3000", "http://b:3000", "http://c:3000"
REFUSED = httpx.ConnectError("refused")
CUT = httpx.RemoteProtocolError("Server disconnected without sending a response")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def attempts(
    urls: tuple[str, ...], request: httpx.Request, retry_for: float, clock: Clock | None = None
) -> Attempts:
    return Attempts(
        Endpoints(urls),
        request,
        retry_for,
        clock=clock or Clock(),
        jitter=lambda low, high: high,  # the ceiling: pauses are exact
    )


def get() -> httpx.Request:
    return httpx.Request("GET", f"{A}/api/v1/jobs")


def post(**headers: str) -> httpx.Request:
    return httpx.Request("POST", f"{A}/api/v1/jobs", json={"command": "true"}, headers=headers)


def test_a_server_list_is_split_trimmed_and_checked() -> None:
    assert parse_urls(" http://a:3000/ ,https://b ") == ("http://a:3000", "https://b")
    assert parse_urls("http://lb:8080") == ("http://lb:8080",)
    for bad in ("", " , ", "a:3000", "http://a:3000,ftp://b", "http://"):
        with pytest.raises(ValueError):
            parse_urls(bad)


def test_a_refused_connection_goes_on_to_the_next_replica_at_once_then_backs_off() -> None:
    clock = Clock()
    tries = attempts((A, B, C), post(), retry_for=10, clock=clock)
    endpoints = tries.endpoints
    pauses = []
    for _ in range(6):
        url = endpoints.current
        pause = tries.after_error(url, REFUSED)  # nothing was sent: even a POST goes on
        assert pause is not None
        pauses.append(pause)
        clock.now += pause
    # A round of three (none waits), a pause, the next round, a longer pause.
    assert pauses == [0.0, 0.0, 0.25, 0.0, 0.0, 0.5]
    assert endpoints.current == httpx.URL(A)


def test_no_round_starts_past_the_budget() -> None:
    clock = Clock()
    tries = attempts((A,), get(), retry_for=1.0, clock=clock)
    waited = 0.0
    while (pause := tries.after_error(tries.endpoints.current, REFUSED)) is not None:
        clock.now += pause
        waited += pause
    assert waited == 0.25 + 0.5  # the next pause (1 s) would end past the budget
    single = attempts((A, B), get(), retry_for=0)
    assert single.after_error(single.endpoints.current, REFUSED) == 0.0  # B, at once
    assert single.after_error(single.endpoints.current, REFUSED) is None  # no second round


def test_a_request_cut_off_after_it_was_sent_is_repeated_only_when_safe() -> None:
    assert attempts((A, B), post(), 10).after_error(httpx.URL(A), CUT) is None
    assert attempts((A, B), get(), 10).after_error(httpx.URL(A), CUT) == 0.0
    keyed = post(**{"Idempotency-Key": "k1"})
    assert attempts((A, B), keyed, 10).after_error(httpx.URL(A), CUT) == 0.0
    marked = post()
    marked.extensions[REPEATABLE] = True
    assert attempts((A, B), marked, 10).after_error(httpx.URL(A), CUT) == 0.0
    # A body read from a file or generator cannot be sent twice, whatever the method.
    streamed = httpx.Request(
        "PUT", f"{A}/x", content=iter([b"data"]), headers={"Idempotency-Key": "k"}
    )
    assert attempts((A, B), streamed, 10).after_error(httpx.URL(A), CUT) is None
    assert attempts((A, B), streamed, 10).after_error(httpx.URL(A), REFUSED) == 0.0


def test_a_cut_off_request_still_moves_every_client_to_the_next_replica() -> None:
    tries = attempts((A, B), post(), 10)
    assert tries.after_error(httpx.URL(A), CUT) is None
    assert tries.endpoints.current == httpx.URL(B)


def test_a_local_failure_is_not_a_dead_replica() -> None:
    tries = attempts((A, B), get(), 10)
    assert tries.after_error(httpx.URL(A), httpx.PoolTimeout("pool full")) is None
    assert tries.endpoints.current == httpx.URL(A)


def test_503_is_retried_after_retry_after_when_safe_and_answered_otherwise() -> None:
    answer = httpx.Response(503, headers={"Retry-After": "2"})
    clock = Clock()
    tries = attempts((A,), get(), retry_for=10, clock=clock)
    assert tries.after_answer(httpx.URL(A), answer) == 2.0  # longer than the backoff's 0.25
    assert attempts((A,), post(), 10).after_answer(httpx.URL(A), answer) is None
    assert attempts((A,), get(), 10).after_answer(httpx.URL(A), httpx.Response(500)) is None
    assert attempts((A,), get(), 10).after_answer(httpx.URL(A), httpx.Response(200)) is None
    worker = Attempts(Endpoints((A,)), get(), 10, retry_answers=False)
    assert worker.after_answer(httpx.URL(A), answer) is None  # the agent reads 503 itself


def test_a_request_is_rebased_on_the_replica_in_use_with_its_host() -> None:
    endpoints = Endpoints(("http://lb/corral", "http://b:3000"))
    request = httpx.Request("GET", "http://lb/corral/api/v1/jobs?limit=5")
    assert endpoints.owns(request.url)
    endpoints.rebase(request, httpx.URL("http://b:3000"))
    assert str(request.url) == "http://b:3000/api/v1/jobs?limit=5"
    assert request.headers["Host"] == "b:3000"
    endpoints.rebase(request, httpx.URL("http://lb/corral"))  # a retry goes back to the first
    assert str(request.url) == "http://lb/corral/api/v1/jobs?limit=5"
    assert request.headers["Host"] == "lb"
    same_host = Endpoints(("http://lb/a", "http://lb/b"))
    moved = httpx.Request("GET", "http://lb/a/api/v1/jobs")
    same_host.rebase(moved, httpx.URL("http://lb/b"))
    assert str(moved.url) == "http://lb/b/api/v1/jobs"
    assert not endpoints.owns(httpx.URL("http://elsewhere/file.bin"))
    assert not endpoints.owns(httpx.URL("http://lb/other"))
    assert not endpoints.owns(httpx.URL("http://lb/corralled/x"))
