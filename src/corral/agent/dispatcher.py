"""The agent's only way to the dispatcher: the native executor API over HTTP.

Every call either returns parsed JSON or raises one of three errors, because the
agent reacts to exactly three situations: the dispatcher cannot be reached (back
off and retry), the attempt is no longer ours (409: stop, report nothing), and
the dispatcher refused the call for another reason (log it; fatal when it is
about our credentials).

The dispatcher may be several replicas (``--server A,B``): every call goes to
the one in use and, when it cannot be reached, to the next at once
(``replicas.py``; the heartbeat's pool and the others move together). A call
that may have taken effect is not repeated here but raises ``Unreachable`` as
before, and its caller's own backoff sends it again, to the next replica: so a
lease is renewed, and an outcome delivered, through whichever answers.

The calls go through aiohttp rather than httpx (which the CLI and SDK use): a
call costs the worker's CPU about a fifth as much, and the claim's answer is on
the path from submit to the job's start.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp
import httpx
import orjson

from corral.agent.executor import JobRun
from corral.agent.jobfiles import TransferError
from corral.agent.limits import Resources
from corral.agent.output import StopSending
from corral.agent.replicas import UNANSWERED, Answer, Replicas, fetch
from corral.agent.spool import Chunk
from corral.domain.jobs import DEFAULT_TIMEOUT, JobSpec
from corral.failover import Endpoints, parse_urls

API = "/api/v1"
CONNECT_TIMEOUT = 10.0
# A transfer may take long; each read waits at most this (httpx's Timeout(300, connect=10)).
TRANSFER_TIMEOUT = aiohttp.ClientTimeout(
    total=None, connect=None, sock_connect=CONNECT_TIMEOUT, sock_read=300.0
)
TRANSFER_PIECE = 1 << 20
MAX_RETRY_AFTER = 60.0  # a longer ask is ignored: leases would run out meanwhile
# Idle connections are closed by us after this, before the server's 5 s (uvicorn's
# keep-alive) would close them under a request just sent on one.
KEEPALIVE_S = 4.0
USER_AGENT = "corral-worker"
JSON = {"Content-Type": "application/json"}


class DispatcherError(Exception):
    """The dispatcher answered with an error status."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after  # seconds the dispatcher asked us to wait (429, 503)


class StaleAttempt(DispatcherError, StopSending):
    """409: this attempt no longer holds the job's lease."""


class Unreachable(Exception):
    """No answer: connection refused, reset, or timed out."""


class Dispatcher:
    """Thin async wrapper over the executor endpoints, fenced by ``executor_id`` + attempt.

    Built inside the event loop it serves (aiohttp's sessions belong to one loop).
    """

    def __init__(self, url: str, token: str, executor_id: str, *, timeout: float = 30.0) -> None:
        self.executor_id = executor_id
        self.endpoints = Endpoints(parse_urls(url))
        self.replicas = Replicas(self.endpoints)
        self._timeout = _limit(timeout)
        tls = _tls_context() if any(u.scheme == "https" for u in self.endpoints.urls) else None
        headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        self.http = _session(64, headers, tls)
        # Heartbeats get a pool of their own: behind output, artifact uploads and long
        # polls in a shared pool, a heartbeat could wait for a free connection until
        # the leases it renews are gone.
        self.beats = _session(2, headers, tls)

    async def aclose(self) -> None:
        await self.http.close()
        await self.beats.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        limit_s: float | None = None,
        session: aiohttp.ClientSession | None = None,
        repeatable: bool = False,
    ) -> Any:
        """One request; JSON in, JSON out (None for 204)."""
        content = None if body is None else orjson.dumps(body)
        headers = JSON if content is not None else None
        timeout = self._timeout if limit_s is None else _limit(limit_s)
        via = session or self.http

        def attempt(base: str) -> Awaitable[Answer]:
            return fetch(
                via, method, base + API + path, data=content, headers=headers, limits=timeout
            )

        try:
            answer = await self.replicas.round(attempt, repeatable=repeatable)
        except UNANSWERED as exc:
            raise Unreachable(f"{method} {path}: {exc!r}") from exc
        if answer.status == 204:
            return None
        if answer.status >= 400:
            raise _error(answer)
        return orjson.loads(answer.body) if answer.body else None

    async def register(self, info: dict[str, Any]) -> Any:
        return await self.call("POST", "/executors", {"executor_id": self.executor_id, **info})

    async def deregister(self, limit_s: float = 10.0) -> None:
        await self.call("DELETE", f"/executors/{self.executor_id}", limit_s=limit_s)

    async def claim(self, n: int, wait: float, labels: Sequence[str]) -> list[dict[str, Any]]:
        body = {
            "executor_id": self.executor_id,
            "n": n,
            "wait": wait,
            "labels": list(labels),
            "runnable_only": True,
        }
        jobs = await self.call("POST", "/jobs/claim", body, limit_s=wait + 15.0)
        return list(jobs or [])

    async def heartbeat(
        self, held: Sequence[tuple[str, int]], draining: bool, limit_s: float
    ) -> dict[str, Any]:
        body = {"jobs": [{"job_id": j, "attempt": a} for j, a in held], "draining": draining}
        path = f"/executors/{self.executor_id}/heartbeat"
        # A heartbeat renews leases: sent twice, it renews them twice. So one cut off with
        # its replica goes on to the next at once, rather than after a backoff.
        answer: dict[str, Any] = await self.call(
            "POST", path, body, limit_s=limit_s, session=self.beats, repeatable=True
        )
        return answer

    async def results(self, reports: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        body = [{**r, "executor_id": self.executor_id} for r in reports]
        answers: list[dict[str, Any]] = await self.call("POST", "/jobs/results", body)
        return answers

    async def release(self, job_id: str, attempt: int) -> None:
        body = {"executor_id": self.executor_id, "attempt": attempt}
        await self.call("POST", f"/jobs/{job_id}/release", body)

    async def output(self, job_id: str, attempt: int, chunk: Chunk) -> bool:
        body = {
            "executor_id": self.executor_id,
            "attempt": attempt,
            "stream": chunk.stream,
            "data": chunk.text,
            "offset": chunk.offset,
            "truncated": chunk.truncated,
        }
        answer = await self.call("POST", f"/jobs/{job_id}/output", body)
        return bool(answer.get("truncated", False)) if isinstance(answer, dict) else False

    async def download_input(self, job_id: str, attempt: int, file_id: str, dest: Path) -> None:
        """Stream a job's input file to ``dest``, checking it against the server's digest."""
        params = {"job_id": job_id, "executor_id": self.executor_id, "attempt": str(attempt)}
        path = f"{API}/files/{file_id}"
        digest = hashlib.sha256()

        async def attempt_on(base: str) -> aiohttp.ClientResponse:
            return await self.http.request(
                "GET",
                base + path,
                params=params,
                timeout=TRANSFER_TIMEOUT,
                allow_redirects=False,
                read_bufsize=TRANSFER_PIECE,  # pieces of up to this much to write
            )

        try:
            # A GET is safe to repeat: cut off before its answer came, it goes on.
            async with await self.replicas.round(attempt_on, repeatable=True) as response:
                if response.status >= 400:
                    raise _transfer_error(_error(await _whole(response)))
                out = await asyncio.to_thread(dest.open, "wb")
                try:
                    async for piece in response.content.iter_chunked(TRANSFER_PIECE):
                        digest.update(piece)
                        await asyncio.to_thread(out.write, piece)
                finally:
                    await asyncio.to_thread(out.close)
                expected = response.headers.get("x-content-sha256")
        except UNANSWERED as exc:
            raise TransferError(f"dispatcher unreachable: {exc!r}", retryable=True) from exc
        if expected and expected != digest.hexdigest():
            raise TransferError("the download does not match its sha256", retryable=True)

    async def upload_artifact(self, job_id: str, attempt: int, path: str, source: Path) -> None:
        """Stream ``source`` to the dispatcher as this attempt's artifact at ``path``."""
        params = {"path": path, "executor_id": self.executor_id, "attempt": str(attempt)}
        where = f"{API}/jobs/{job_id}/artifacts"
        fh = await asyncio.to_thread(source.open, "rb")
        try:
            size = await asyncio.to_thread(lambda: os.fstat(fh.fileno()).st_size)
            headers = {"Content-Length": str(size)}

            def attempt_on(base: str) -> Awaitable[Answer]:
                # A fresh reader per try: a try that was not sent read nothing of ``fh``.
                return fetch(
                    self.http,
                    "POST",
                    base + where,
                    data=_pieces(fh),
                    headers=headers,
                    params=params,
                    limits=TRANSFER_TIMEOUT,
                )

            answer = await self.replicas.round(attempt_on, repeatable=False)
        except UNANSWERED as exc:
            raise TransferError(f"dispatcher unreachable: {exc!r}", retryable=True) from exc
        finally:
            await asyncio.to_thread(fh.close)
        if answer.status >= 400:
            raise _transfer_error(_error(answer))


async def _pieces(fh: BinaryIO) -> AsyncIterator[bytes]:
    while piece := await asyncio.to_thread(fh.read, TRANSFER_PIECE):
        yield piece


def _transfer_error(exc: DispatcherError) -> TransferError:
    retryable = exc.status >= 500 or exc.status == 429
    return TransferError(str(exc), retryable=retryable, stale=isinstance(exc, StaleAttempt))


class JobOutputSink:
    """An ``OutputSink`` bound to one attempt of one job."""

    def __init__(self, dispatcher: Dispatcher, job_id: str, attempt: int) -> None:
        self.dispatcher = dispatcher
        self.job_id = job_id
        self.attempt = attempt

    async def send(self, chunk: Chunk) -> bool:
        try:
            return await self.dispatcher.output(self.job_id, self.attempt, chunk)
        except DispatcherError as exc:
            if exc.status < 500 and exc.status != 429:  # refused for good: stop trying
                raise StopSending(str(exc)) from exc
            raise


def parse_job(job: dict[str, Any]) -> JobRun:
    """A claimed job's wire fields as the executor's ``JobRun``."""
    spec = JobSpec(
        type=str(job.get("type") or "shell"),
        command=job.get("command"),
        binary_url=job.get("binary_url"),
        binary_sha256=job.get("binary_sha256"),
        arguments=tuple(str(a) for a in job.get("arguments") or ()),
        env=_text_map(job.get("env_variables")),
        secret_env=_text_map(job.get("secret_env")),
        working_directory=job.get("working_directory"),
        input_file_id=job.get("input_file_id"),
        inputs=tuple(str(p) for p in job.get("inputs") or ()),
        outputs=tuple(str(p) for p in job.get("outputs") or ()),
        timeout=int(job.get("timeout") or DEFAULT_TIMEOUT),
    )
    resources = Resources.parse(job.get("resources"))
    network = job.get("network") is not False  # absent or null: the job may use the network
    return JobRun(
        str(job["id"]), int(job.get("attempt") or 1), spec, resources=resources, network=network
    )


def _text_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _error(answer: Answer) -> DispatcherError:
    try:
        message = str(orjson.loads(answer.body).get("error", answer.reason))
    except (orjson.JSONDecodeError, AttributeError):
        message = answer.body[:200].decode("utf-8", "replace") or answer.reason
    kind = StaleAttempt if answer.status == 409 else DispatcherError
    return kind(answer.status, message, _retry_after(answer.headers))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (the HTTP-date form is not worth parsing here)."""
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None


async def _whole(response: aiohttp.ClientResponse) -> Answer:
    body = await response.read()
    return Answer(response.status, response.reason or "", response.headers, body)


def _limit(seconds: float) -> aiohttp.ClientTimeout:
    """A call's whole time, of which connecting takes at most ``CONNECT_TIMEOUT``; the
    wait for a pooled connection has no bound of its own (``replicas.py`` says why)."""
    return aiohttp.ClientTimeout(
        total=seconds, connect=None, sock_connect=min(CONNECT_TIMEOUT, seconds)
    )


def _session(
    connections: int, headers: Mapping[str, str], tls: ssl.SSLContext | None
) -> aiohttp.ClientSession:
    """A keep-alive pool of up to ``connections`` to whichever replica is in use.

    No cookies (the worker authenticates with its bearer token), no proxies from the
    environment (as the httpx client before it), gzip answers decoded.
    """
    connector = aiohttp.TCPConnector(
        limit=connections,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_S,
        ssl=tls if tls is not None else True,
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers=dict(headers),
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )


def _tls_context() -> ssl.SSLContext:
    """The authorities the CLI and the SDK trust too: ``SSL_CERT_FILE``, else
    ``SSL_CERT_DIR``, else certifi's bundle (httpx's own rule, so all three agree)."""
    return httpx.create_ssl_context()
