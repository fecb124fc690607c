"""The worker's calls to the dispatcher's replicas, on aiohttp: one round per call.

``corral worker --server A,B`` shares one ``corral.failover.Endpoints`` between its
sessions (the heartbeat's and the others'): every call goes to the replica in use and,
when that replica fails, the next one is in use for all of them. The rules are those
of ``corral.failover`` with ``retry_for=0`` and ``retry_answers=False``: one round over
the replicas, no waiting, and an answer is the answer (a 503 included: the agent's
loops back off themselves and read its ``Retry-After``).

aiohttp's failures, sorted the way ``corral.failover`` sorts httpx's:

- **not sent**: the next replica at once, for any call.
  ``ClientConnectorError`` and its subclasses (refused, unreachable, name not
  resolved, TLS handshake or certificate refused) and ``ConnectionTimeoutError`` (the
  socket's connect ran out of time: the sessions leave the wait for a pooled connection
  unbounded apart from the call's total, so a busy pool never looks like a dead replica).
- **cut off**: the request may have reached the replica and taken effect, so the next
  replica only for a call its caller says is repeatable (the heartbeat); any other is
  raised, and its caller's own backoff sends it again, to the replica now in use.
  ``ServerDisconnectedError`` (closed before or while answering), ``ClientOSError``
  (reset while writing or reading), ``ClientConnectionError``'s other kinds (writing to a
  closing connection), ``ClientPayloadError`` (the body cut short),
  ``ClientResponseError`` (an answer that is not HTTP), ``SocketTimeoutError`` (no byte
  for ``sock_read``) and a plain ``TimeoutError`` (the call's ``total`` ran out, wherever
  it was: counted as cut off, the cautious reading).
- anything else (a bad URL, a closed session) is raised at once: another replica would
  not help.

Either way the failed replica is marked on ``Endpoints`` (only if it is still the one in
use: two calls failing together move on once). Before any of this, aiohttp itself sends
a GET or a DELETE once more, to the same replica, when the kept-alive connection it
took turned out closed (RFC 9112's retry of an idempotent request); a POST never.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from corral.failover import Endpoints

T = TypeVar("T")

NOT_SENT: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
)
# After NOT_SENT in every ``except``: both of its kinds are also kinds of these.
CUT_OFF: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientResponseError,
    TimeoutError,
)
# Everything a call to the dispatcher may raise for want of an answer.
UNANSWERED: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)


class Replicas:
    """The replicas' base URLs, and one round over them per call."""

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints
        # As text, indexed like ``endpoints.urls``: aiohttp takes str (or yarl) URLs.
        self.bases = tuple(str(url).rstrip("/") for url in endpoints.urls)

    async def round(self, attempt: Callable[[str], Awaitable[T]], *, repeatable: bool) -> T:
        """``attempt(base)`` on the replica in use, then on the next ones as the rules
        above allow; the last failure is raised when none is left to try."""
        tried = 0
        while True:
            at = self.endpoints.position
            try:
                return await attempt(self.bases[at])
            except NOT_SENT as exc:
                failure: BaseException = exc
            except CUT_OFF as exc:
                if not repeatable:
                    self._failed(at)
                    raise
                failure = exc
            self._failed(at)
            tried += 1
            if tried >= len(self.bases):
                raise failure

    def _failed(self, at: int) -> None:
        self.endpoints.failed(self.endpoints.urls[at])


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, read before the round ends: a body cut short counts as cut off."""

    status: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    limits: aiohttp.ClientTimeout,
) -> Answer:
    """One request and its whole answer (no redirects followed, as httpx by default)."""
    async with session.request(
        method,
        url,
        data=data,
        headers=headers,
        params=params,
        timeout=limits,
        allow_redirects=False,
    ) as response:
        body = await response.read()
        return Answer(response.status, response.reason or "", response.headers, body)
