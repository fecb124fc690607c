"""A small fault-injecting HTTP/1.1 proxy on 127.0.0.1, for tests of the worker's delivery.

It sits between a real ``corral worker`` (or SDK client) and a real dispatcher and, for
each request, asks a rule what to do: pass it on, answer 503 itself, delay it, drop the
connection before forwarding (the request never arrives), drop it after forwarding (the
request took effect but its answer is lost), or cut the answer's body off half way. A
``rewrite`` may change the headers it forwards, as a server or middlebox that sees
other headers would. It keeps a log of every request, its headers as the client sent
them and the connection it came on, so a test can say which calls shared a connection.

It runs its own event loop in a thread, so synchronous tests drive it like a server.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

PASS = "pass"
UNAVAILABLE = "503"  # answer 503 without forwarding (any other status the same way: "400")
DROP = "drop"  # close the connection without forwarding: the call never happened
DROP_AFTER = "drop_after"  # forward, then close without answering: the answer is lost
CUT = "cut"  # forward, then answer with the first half of the body only and close

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Call:
    """One request the proxy saw, and what it did with it."""

    connection: int
    method: str
    path: str
    body: bytes
    action: str | float  # a float: forwarded after that many seconds
    status: int | None = None  # what the client was answered, None when dropped
    answer: bytes = b""  # the dispatcher's answer, also when the client never got it
    headers: tuple[tuple[str, str], ...] = ()  # as the client sent them

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


Rule = Callable[[Call], "str | float"]
Headers = list[tuple[str, str]]


class FaultProxy:
    """``with FaultProxy(upstream, rule) as proxy:`` then point the worker at ``proxy.url``."""

    def __init__(
        self, upstream: str, rule: Rule, rewrite: Callable[[Headers], Headers] | None = None
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.rule = rule
        self.rewrite = rewrite
        self.calls: list[Call] = []
        self.url = ""
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def seen(self, path_part: str) -> list[Call]:
        """The calls whose path contains ``path_part``, in arrival order."""
        with self._lock:
            return [c for c in self.calls if path_part in c.path]

    async def _start(self) -> int:
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=None)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def _stop(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = next(self._ids)
        task = asyncio.current_task()
        assert task is not None
        self._writers.add(writer)
        self._tasks.add(task)
        try:
            while await self._one(connection, reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def _one(
        self, connection: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; False when the connection is to be dropped."""
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = [tuple(line.split(":", 1)) for line in lines if ":" in line]
        fields = {k.strip().lower(): v.strip() for k, v in headers}
        body = await _read_body(reader, fields)
        sent = tuple((k.strip(), v.strip()) for k, v in headers)
        call = Call(connection, method, target.split("?", 1)[0], body, PASS, headers=sent)
        action = self.rule(call)
        if action == DROP:
            self._log(call, action, None)
            return False
        if isinstance(action, str) and action.isdigit():  # "503", "400": answer it ourselves
            self._log(call, action, int(action))
            _write(
                writer, int(action), [("content-type", "application/json")], b'{"error":"injected"}'
            )
            await writer.drain()
            return True
        if isinstance(action, float):
            await asyncio.sleep(action)
        forwarded = [(k, v) for k, v in sent if k.lower() not in HOP_BY_HOP]
        if self.rewrite is not None:
            forwarded = self.rewrite(forwarded)
        try:
            response = await self._http.request(method, target, headers=forwarded, content=body)
            status, out_headers, content = response.status_code, response.headers, response.content
        except httpx.TransportError:  # the dispatcher is down: what a load balancer says
            status, out_headers, content = 502, httpx.Headers(), b'{"error":"bad gateway"}'
        if action == DROP_AFTER:
            self._log(call, action, None, content)
            return False
        self._log(call, action, status, content)
        kept = [(k, v) for k, v in out_headers.items() if k.lower() not in HOP_BY_HOP]
        kept = [(k, v) for k, v in kept if k.lower() != "content-encoding"]
        if action == CUT:  # announce the whole body, send half of it, hang up
            _write(writer, status, kept, content, len(content) // 2)
            await writer.drain()
            return False
        _write(writer, status, kept, content)
        await writer.drain()
        return True

    def _log(
        self, call: Call, action: str | float, status: int | None, answer: bytes = b""
    ) -> None:
        with self._lock:
            self.calls.append(
                Call(
                    call.connection,
                    call.method,
                    call.path,
                    call.body,
                    action,
                    status,
                    answer,
                    call.headers,
                )
            )


async def _read_body(reader: asyncio.StreamReader, fields: dict[str, str]) -> bytes:
    if "content-length" in fields:
        return await reader.readexactly(int(fields["content-length"]))
    if fields.get("transfer-encoding", "").lower() != "chunked":
        return b""
    body = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += await reader.readexactly(size)
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")  # the empty trailer
    return bytes(body)


def _write(
    writer: asyncio.StreamWriter,
    status: int,
    headers: Any,
    content: bytes,
    sent: int | None = None,
) -> None:
    """An answer announcing ``content``, of which only the first ``sent`` bytes go out
    (None: all)."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in headers)]
    lines.append(f"content-length: {len(content)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + content[:sent])


class Countdown:
    """A rule helper: the first ``n`` calls matching it get ``action``, later ones pass."""

    def __init__(self, n: int) -> None:
        self.left = n
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True
