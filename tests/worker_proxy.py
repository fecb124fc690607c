"""A small fault-injecting HTTP proxy on loopback, for tests of how a real worker
behaves when its dispatcher misbehaves.

Every request is passed to ``rule(method, path)``, which answers one of:
- ``PASS``: forward it to the real dispatcher and hand back its answer;
- an ``int``: answer that status at once with a JSON error body, never forwarding;
- ``DROP``: close the connection without answering (the dispatcher is away);
- ``HOLD``: keep the connection open without answering until the rule changes,
  then drop it (a network partition that neither refuses nor answers).
Whatever is forwarded is forwarded whole: a claim that passes leases its jobs, even
when the worker hangs up meanwhile (the proxy does not pass a hang-up on).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

PASS = "pass"
DROP = "drop"
HOLD = "hold"
Rule = Callable[[str, str], str | int]
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Proxy:
    """The proxy's address, its current rule, and the requests it saw (method, path)."""

    url: str
    rule: Rule = lambda method, path: PASS
    seen: list[tuple[str, str]] = field(default_factory=list)

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for m, p in list(self.seen) if m == method and p.endswith(suffix))


def _handler(proxy: Proxy, upstream: httpx.Client) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            proxy.seen.append((self.command, self.path))
            action = proxy.rule(self.command, self.path)
            while action == HOLD:
                time.sleep(0.05)
                action = proxy.rule(self.command, self.path)
                if action != HOLD:
                    action = DROP
            if action == DROP:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(action, int):
                self._answer(action, json.dumps({"error": "injected", "context": {}}).encode())
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            try:
                answer = upstream.request(self.command, self.path, content=body, headers=headers)
                self._answer(answer.status_code, answer.content, answer.headers.get("content-type"))
            except (httpx.HTTPError, OSError):  # the proxy is closing, or the worker left
                self.close_connection = True

        def _answer(self, status: int, body: bytes, kind: str | None = "application/json") -> None:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    return Handler


@contextmanager
def fault_proxy(target: str) -> Iterator[Proxy]:
    """A proxy to ``target`` on a free loopback port, for the ``with`` block's duration."""
    with httpx.Client(base_url=target, timeout=120) as upstream:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), http.server.BaseHTTPRequestHandler
        )
        proxy = Proxy(f"http://127.0.0.1:{server.server_address[1]}")
        server.RequestHandlerClass = _handler(proxy, upstream)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="fault-proxy", daemon=True)
        thread.start()
        try:
            yield proxy
        finally:
            proxy.rule = lambda method, path: DROP  # release held requests
            server.shutdown()
            server.server_close()
            thread.join(5)
