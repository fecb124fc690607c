"""Request budgets: per principal, per client IP for failed authentications, and for logins.

Logins count *failures*, per (email, client IP) and per client IP: an address
that keeps guessing is refused (429), while nobody else is, so no one can lock
a user out by failing on their email from elsewhere. Failures at one email from
every address only slow its logins down (``SLOW_DOWN_SECONDS`` before the
password is checked), right password included, never refuse them. An attempt
is counted as failed from the start and refunded once it succeeds, so parallel
guesses cannot all slip in before the first failure is counted.

Counted by the services' ``Counting``: in this process's memory with SQLite (one
process), and with PostgreSQL in the database every replica shares, so N
replicas behind a balancer admit a principal its limit once, not N times
(``services/allowances.py`` says how, and what it costs per request).

Each check leaves its figures in the ASGI scope's state, where the headers
middleware (``headers.py``) turns them into ``X-RateLimit-*`` on the response,
refused or not.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from limits import RateLimitItem, parse
from starlette.requests import HTTPConnection

from corral.domain.principals import Principal, Role
from corral.errors import InvalidCredentials, RateLimited, Unauthenticated
from corral.services.counting import Count, Counting
from corral.settings import ServerSettings

STATE_KEY = "corral.rate_limit"  # scope["state"][STATE_KEY]: the figures of the last check
MESSAGE = "Rate limit exceeded"  # the document's wording, in every dialect
MAX_EMAIL_KEY = 320  # longest valid address; longer garbage must not grow the counters' keys
SLOW_DOWN_SECONDS = 1.0  # wait before checking a password of an email under attack
LOGIN_FAILURES = (InvalidCredentials, Unauthenticated)  # what a wrong guess raises

log = logging.getLogger("corral.auth")


@dataclass(frozen=True, slots=True)
class Figures:
    """What the caller is told about one budget after a request was counted."""

    limit: int
    remaining: int
    reset: float  # epoch seconds at which the window starts afresh

    def retry_after(self, now: float) -> int:
        """Whole seconds, rounded up so that a client that waits exactly this long succeeds."""
        return max(1, math.ceil(self.reset - now))

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(max(0, self.remaining)).encode()),
            (b"x-ratelimit-reset", str(math.ceil(self.reset)).encode()),
        ]


@dataclass(frozen=True, slots=True)
class Spent:
    allowed: bool
    figures: Figures


class Budget:
    """One configured rate, counted separately for each key it is spent against."""

    def __init__(self, counting: Counting, rate: RateLimitItem, name: str) -> None:
        self._counting = counting
        self._rate = rate
        self.name = name

    async def spend(self, key: str) -> Spent:
        count = await self._counting.hit(self._rate, self.name, key)
        return Spent(count.allowed, self._figures(count))

    async def refund(self, key: str) -> None:
        """Give back one spent unit (never below zero)."""
        await self._counting.refund(self._rate, self.name, key)

    async def exhausted(self, key: str) -> bool:
        return await self._counting.exhausted(self._rate, self.name, key)

    async def figures(self, key: str) -> Figures:
        return self._figures(await self._counting.peek(self._rate, self.name, key))

    def _figures(self, count: Count) -> Figures:
        return Figures(self._rate.amount, count.remaining, count.reset)

    def refusal(self, figures: Figures) -> RateLimited:
        retry_after = figures.retry_after(time.time())
        return RateLimited(MESSAGE, retry_after=retry_after, limit=str(self._rate), scope=self.name)


class RateLimits:
    """Every budget of one app; a budget that is ``None`` is switched off."""

    def __init__(self, settings: ServerSettings, counting: Counting) -> None:
        def budget(rate: str | None, name: str) -> Budget | None:
            return Budget(counting, parse(rate), name) if rate else None

        self.principal = budget(settings.rate_limit, "principal")
        self.worker = budget(settings.worker_rate_limit, "worker")
        self.auth_failure = budget(settings.auth_failure_rate_limit, "auth-failure")
        self.login_ip = budget(settings.login_ip_rate_limit, "login-ip")
        self.login_pair = budget(settings.login_rate_limit, "login-email-ip")
        self.login_email = budget(settings.login_rate_limit, "login-email")  # slows, never refuses

    async def before_authentication(self, connection: HTTPConnection) -> None:
        """An IP that spent its failures is refused before its token is even looked at.

        Otherwise a sprayer could go on telling good tokens (200) from bad (429).
        """
        budget = self.auth_failure
        if budget is None:
            return
        ip = client_ip(connection)
        if await budget.exhausted(ip):
            figures = await budget.figures(ip)
            _remember(connection, figures)
            raise budget.refusal(figures)

    async def authentication_failed(self, connection: HTTPConnection) -> None:
        """Count a failure; raises ``RateLimited`` in place of the 401 once over budget."""
        if self.auth_failure is not None:
            await _spend(connection, [(self.auth_failure, client_ip(connection))])

    async def authenticated(self, connection: HTTPConnection, principal: Principal) -> None:
        budget = self.worker if principal.role == Role.WORKER else self.principal
        if budget is not None:
            await _spend(connection, [(budget, principal.id)])

    @asynccontextmanager
    async def login_attempt(
        self, connection: HTTPConnection, email: str | None
    ) -> AsyncIterator[None]:
        """Guard one login, whose check runs inside the ``async with``.

        Refused (``RateLimited``) before anything is checked once this address, or this
        address for this email, has spent its failures, so a brute-force run learns
        nothing once over. Slowed when the email has many recent failures from anywhere.
        A ``LOGIN_FAILURES`` raised inside is a failure; anything else is refunded.
        """
        ip = client_ip(connection)
        key = email.strip().lower()[:MAX_EMAIL_KEY] if email else None
        pairs = [(self.login_ip, ip), (self.login_pair, f"{key} {ip}" if key else None)]
        spends = [(b, k) for b, k in pairs if b is not None and k is not None]
        try:
            await _spend(connection, spends)  # provisional: a failure until it succeeds
        except RateLimited:
            _log_login("login refused: too many failed logins", "login_throttled", key, ip)
            raise
        email_budget = self.login_email if key else None
        if email_budget is not None and key and await email_budget.exhausted(key):
            await asyncio.sleep(SLOW_DOWN_SECONDS)
        try:
            yield
        except LOGIN_FAILURES:
            _log_login("login failed", "login_failed", key, ip)
            if email_budget is not None and key:
                await email_budget.spend(key)
            raise
        except BaseException:
            await _refund(spends)
            raise
        await _refund(spends)


def _log_login(message: str, action: str, email: str | None, ip: str) -> None:
    """Every failed or refused login, for fail2ban and audits: who tried, from where.
    Never the password; the email as typed (lower case), quoted so that it cannot
    forge a log line."""
    shown = repr(email) if email is not None else "(none)"
    extra = {"action": action, "email": email, "address": ip}
    log.warning("%s for %s from %s", message, shown, ip, extra=extra)


async def _spend(connection: HTTPConnection, spends: list[tuple[Budget, str]]) -> None:
    """Spend on every budget (so none can be probed for free), then report the tightest."""
    if not spends:
        return
    results = [(budget, await budget.spend(key)) for budget, key in spends]
    _remember(connection, min((spent.figures for _, spent in results), key=_tightness))
    refused = [(budget, spent.figures) for budget, spent in results if not spent.allowed]
    if refused:
        budget, figures = max(refused, key=lambda pair: pair[1].reset)
        raise budget.refusal(figures)


async def _refund(spends: list[tuple[Budget, str]]) -> None:
    for budget, key in spends:
        await budget.refund(key)


def _tightness(figures: Figures) -> tuple[int, float]:
    return figures.remaining, -figures.reset


def _remember(connection: HTTPConnection, figures: Figures) -> None:
    connection.scope.setdefault("state", {})[STATE_KEY] = figures


def client_ip(connection: HTTPConnection) -> str:
    """The peer address; uvicorn puts the ``X-Forwarded-For`` client here for trusted proxies."""
    return connection.client.host if connection.client else "unknown"


def rate_limits_of(connection: HTTPConnection) -> RateLimits:
    limits: RateLimits = connection.app.state.rate_limits
    return limits
