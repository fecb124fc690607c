"""The httpx clients under every SDK class and the CLI: one dispatcher URL or several.

``url`` may list replicas, comma-separated (``http://a:3000,http://b:3000``):
requests go to one of them and move on to the next when it cannot be reached
(``corral.failover``). A request that may have taken effect is repeated only
when that is safe (GET, or an ``Idempotency-Key``), and connection errors and
502/503/504 answers are retried with backoff and jitter for up to
``retry_for`` seconds before the call fails.
"""

from __future__ import annotations

import httpx

from corral.failover import AsyncFailoverTransport, Endpoints, FailoverTransport, parse_urls

DEFAULT_RETRY_FOR = 10.0  # rides out a replica's restart or PostgreSQL's


def session_headers(token: str | None, user_agent: str) -> dict[str, str]:
    """The headers every request of a session carries: who calls, and its token if any."""
    headers = {"User-Agent": user_agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def endpoints(url: str) -> Endpoints:
    """The replicas named by ``url``; ``ValueError`` when an entry is not an http(s) URL."""
    return Endpoints(parse_urls(url))


def sync_http(
    url: str, headers: dict[str, str], timeout: float | httpx.Timeout, retry_for: float
) -> httpx.Client:
    found = endpoints(url)
    return httpx.Client(
        base_url=str(found.home),
        headers=headers,
        timeout=timeout,
        transport=FailoverTransport(found, retry_for),
    )


def async_http(
    url: str, headers: dict[str, str], timeout: float | httpx.Timeout, retry_for: float
) -> httpx.AsyncClient:
    found = endpoints(url)
    return httpx.AsyncClient(
        base_url=str(found.home),
        headers=headers,
        timeout=timeout,
        transport=AsyncFailoverTransport(found, retry_for),
    )
