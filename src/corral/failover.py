"""Several interchangeable dispatcher URLs, and moving to the next when one fails.

``corral worker --server A,B,C``, the ``corral`` command and the SDK take a
comma-separated list of replicas' URLs (one URL, say a load balancer's, is a
list of one). Every request goes to the URL in use, the first at the start;
when it fails, the next one is in use from then on, for every client sharing
the same ``Endpoints`` (a worker's heartbeat and its other calls move together).

What is tried again, and where, is decided per request (``Attempts``):

- no connection could be opened (refused, timed out): nothing was sent, so any
  request goes on to the next URL at once;
- the connection broke after the request was sent, or the answer was 502, 503
  or 504 (a load balancer without a backend, a replica without its database):
  the request may have taken effect, so only one that is safe to repeat is sent
  again: GET, HEAD, OPTIONS, one with an ``Idempotency-Key``, or one the caller
  marked ``REPEATABLE``;
- once every URL has failed in a row, the next round waits first: exponential
  backoff with jitter (or the server's ``Retry-After``, if longer), so a fleet
  that lost every replica does not come back in lockstep; no round starts past
  the request's ``retry_for`` budget (0: one round, no waiting).

The transports wrap httpx's own, so streaming bodies, timeouts and connection
pools work as before; a request for another host (a job's ``binary_url``)
passes through untouched.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence

import httpx

REPEATABLE = "corral_repeatable"  # request extension: the caller says a repeat is harmless
# Request extension: the replica a request points at now, and its path and query below
# the URL it was built on.
_REBASED = "corral_rebased"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
# Failures after the request left: the replica may have died with it.
CUT_OFF = (
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
    httpx.ReadTimeout,
    httpx.WriteTimeout,
)
BACKOFF_FIRST = 0.25
BACKOFF_CAP = 8.0
MAX_RETRY_AFTER = 30.0  # a longer ask is capped: the budget decides whether to wait at all


def parse_urls(text: str) -> tuple[str, ...]:
    """``"http://a:3000, http://b:3000/"`` -> both URLs without trailing slashes.

    Raises ``ValueError`` naming the culprit when an entry is not an http(s) URL.
    """
    urls = tuple(part.strip().rstrip("/") for part in text.split(",") if part.strip())
    if not urls:
        raise ValueError("no server URL given")
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if scheme not in ("http", "https") or not sep or not rest:
            raise ValueError(f"not an http(s) URL: {url!r}")
    return urls


class Endpoints:
    """The replicas' URLs and which one is in use."""

    def __init__(self, urls: Sequence[str]) -> None:
        if not urls:
            raise ValueError("no server URL given")
        self.urls = tuple(httpx.URL(u) for u in urls)
        self.home = self.urls[0]  # clients build their requests on it (``base_url``)
        self._prefix = self.home.raw_path.rstrip(b"/")
        self._current = 0

    @property
    def current(self) -> httpx.URL:
        return self.urls[self._current]

    @property
    def position(self) -> int:
        """The index in ``urls`` of the one in use, for clients that keep their own
        per-replica data (the worker's aiohttp calls keep each base URL as text)."""
        return self._current

    def failed(self, url: httpx.URL) -> None:
        """``url`` failed: the next one is in use, unless another request moved on already."""
        if url == self.current:
            self._current = (self._current + 1) % len(self.urls)

    def owns(self, url: httpx.URL) -> bool:
        """Whether ``url`` was built on ``home`` (else it goes elsewhere, untouched)."""
        prefix = self._prefix
        rest = url.raw_path[len(prefix) :]
        same_origin = (url.scheme, url.host, url.port) == (
            self.home.scheme,
            self.home.host,
            self.home.port,
        )
        return same_origin and url.raw_path.startswith(prefix) and rest[:1] in (b"", b"/", b"?")

    def rebase(self, request: httpx.Request, to: httpx.URL) -> None:
        """Point ``request`` (built on ``home`` or rebased before) at the replica ``to``.

        In place: a new ``httpx.Request`` per try would cost more than the rest of
        this module together, and the response's ``request`` then says where it went.
        """
        at, rest = request.extensions.get(_REBASED, (self.home, b""))
        if at is to:  # ``to`` is one of ``urls``: identity is enough, and cheap
            return
        if at is self.home:
            rest = request.url.raw_path[len(self._prefix) :]
        request.extensions[_REBASED] = (to, rest)
        request.url = to.copy_with(raw_path=to.raw_path.rstrip(b"/") + rest)
        request.headers["Host"] = request.url.netloc.decode("ascii")


class Attempts:
    """The tries of one request: after each failure, whether to try again, and when."""

    def __init__(
        self,
        endpoints: Endpoints,
        request: httpx.Request,
        retry_for: float,
        *,
        retry_answers: bool = True,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.endpoints = endpoints
        self.deadline = clock() + retry_for
        self.retry_answers = retry_answers
        self.repeatable = _repeatable(request)
        self.clock = clock
        self.jitter = jitter
        self.tried = 0  # URLs that failed in this round
        self.rounds = 0

    def after_error(self, url: httpx.URL, exc: httpx.TransportError) -> float | None:
        """Seconds to pause before the next try, or None: give up (re-raise ``exc``)."""
        if not isinstance(exc, NOT_SENT + CUT_OFF):
            return None  # a local problem (pool exhausted, bad URL): another replica won't help
        self.endpoints.failed(url)
        if not isinstance(exc, NOT_SENT) and not self.repeatable:
            return None  # it may have taken effect: only the caller can tell
        return self._pause(None)

    def after_answer(self, url: httpx.URL, response: httpx.Response) -> float | None:
        """Seconds to pause before trying again, or None: this answer is the answer."""
        if not (self.retry_answers and response.status_code in RETRY_STATUSES):
            return None
        if not self.repeatable:
            return None
        self.endpoints.failed(url)
        return self._pause(_retry_after(response))

    def _pause(self, asked: float | None) -> float | None:
        self.tried += 1
        if self.tried < len(self.endpoints.urls):
            return 0.0  # a replica not tried in this round: at once
        self.tried = 0
        ceiling = min(BACKOFF_CAP, BACKOFF_FIRST * 2**self.rounds)
        self.rounds += 1
        pause = max(self.jitter(ceiling / 2, ceiling), asked or 0.0)
        if self.clock() + pause > self.deadline:
            return None
        return pause


def _repeatable(request: httpx.Request) -> bool:
    """Safe to send twice: its method or its caller says so, and its body can be replayed."""
    replayable = isinstance(request.stream, httpx.ByteStream)
    said = (
        request.method in SAFE_METHODS
        or "idempotency-key" in request.headers
        or bool(request.extensions.get(REPEATABLE))
    )
    return replayable and said


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(seconds, MAX_RETRY_AFTER) if seconds >= 0 else None


class FailoverTransport(httpx.BaseTransport):
    """A sync transport that sends each request to the replica in use, moving on as above."""

    def __init__(
        self,
        endpoints: Endpoints,
        retry_for: float,
        *,
        retry_answers: bool = True,
        inner: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.retry_for = retry_for
        self.retry_answers = retry_answers
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not self.endpoints.owns(request.url):
            return self.inner.handle_request(request)
        attempts = Attempts(
            self.endpoints, request, self.retry_for, retry_answers=self.retry_answers
        )
        while True:
            url = self.endpoints.current
            try:
                self.endpoints.rebase(request, url)
                response = self.inner.handle_request(request)
            except httpx.TransportError as exc:
                pause = attempts.after_error(url, exc)
                if pause is None:
                    raise
            else:
                pause = attempts.after_answer(url, response)
                if pause is None:
                    return response
                response.close()
            time.sleep(pause)

    def close(self) -> None:
        self.inner.close()


class AsyncFailoverTransport(httpx.AsyncBaseTransport):
    """``FailoverTransport`` for ``httpx.AsyncClient``."""

    def __init__(
        self,
        endpoints: Endpoints,
        retry_for: float,
        *,
        retry_answers: bool = True,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.retry_for = retry_for
        self.retry_answers = retry_answers
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.endpoints.owns(request.url):
            return await self.inner.handle_async_request(request)
        attempts = Attempts(
            self.endpoints, request, self.retry_for, retry_answers=self.retry_answers
        )
        while True:
            url = self.endpoints.current
            try:
                self.endpoints.rebase(request, url)
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                pause = attempts.after_error(url, exc)
                if pause is None:
                    raise
            else:
                pause = attempts.after_answer(url, response)
                if pause is None:
                    return response
                await response.aclose()
            await asyncio.sleep(pause)

    async def aclose(self) -> None:
        await self.inner.aclose()
