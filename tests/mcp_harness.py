"""Driving Corral's MCP face with the ``mcp`` SDK's own client, over either transport.

``Dispatcher`` is a real ``corral server`` process (which serves ``/mcp``);
``http_session`` connects to it over streamable HTTP with a Bearer token, and
``stdio_session`` starts a real ``corral mcp`` process and talks to it over its
stdin/stdout, as a desktop agent client does. Tests take a ``Connect`` and run
the same scenario over both.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult

from tests.processes import CORRAL, clean_env, free_port, poll

Connect = Callable[[str], AbstractAsyncContextManager[Client]]


@dataclass
class Dispatcher:
    url: str
    root: Path
    admin: str

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def token(self, role: str, project_id: str | None = None) -> str:
        body: dict[str, Any] = {"role": role, "name": f"mcp-{role}"}
        if project_id is not None:
            body["project_id"] = project_id
        with self.http() as http:
            secret: str = (
                http.post("/api/v1/admin/tokens", json=body).raise_for_status().json()["token"]
            )
            return secret


@contextmanager
def run_dispatcher(root: Path, **env: str) -> Iterator[Dispatcher]:
    data, port = root / "data", free_port()
    with (root / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [*CORRAL, "server", "--data-dir", str(data), "--port", str(port)],
            env=clean_env(**env),
            stdout=log,
            stderr=log,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        poll(lambda: _up(url) and (data / "admin-token").exists(), 90, "corral server")
        yield Dispatcher(url, root, (data / "admin-token").read_text().strip())
    finally:
        server.terminate()
        server.wait(20)


def _up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def http_session(dispatcher: Dispatcher) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http:
            transport = streamable_http_client(dispatcher.url + "/mcp", http_client=http)
            # The SDK's default: the session-less 2026-07-28 protocol where the server
            # speaks it (``corral mcp`` covers the handshake era, with its session).
            async with Client(transport) as client:
                yield client

    return connect


def stdio_session(dispatcher: Dispatcher) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        token_file = dispatcher.root / f"token-{hashlib.sha256(token.encode()).hexdigest()[:12]}"
        token_file.write_text(token + "\n")
        params = StdioServerParameters(
            command=sys.executable,
            args=[*CORRAL[1:], "mcp", "--server", dispatcher.url, "--token-file", str(token_file)],
            env=clean_env(),
        )
        async with Client(params) as client:
            yield client

    return connect


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    """A tool's JSON answer; the test fails, quoting the text, if it was an error."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}: {text_of(result)}"
    return json.loads(text_of(result))


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """The text of a tool result flagged as an error (the test fails if it was not)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} was not refused: {text_of(result)}"
    return text_of(result)


def text_of(result: CallToolResult) -> str:
    texts = [getattr(block, "text", "") for block in result.content]
    return "".join(texts)


async def tool_names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


# Each stdio session starts a ``corral mcp`` process (the SDK takes a second or two to
# import), so the stdio runs are marked slow; they still run in CI.
TRANSPORTS = ("http", pytest.param("stdio", marks=pytest.mark.slow))


def connector(dispatcher: Dispatcher, transport: str) -> Connect:
    return http_session(dispatcher) if transport == "http" else stdio_session(dispatcher)


async def make_project(admin: Client, name: str) -> tuple[str, str]:
    """A project with one templated task type: (project id, task type id)."""
    project = await call(
        admin, "create_project", name=name, description="d", instructions=f"rules of {name}"
    )
    task_type = await call(
        admin,
        "create_task_type",
        projectId=name,
        name="greet",
        template="greet {{who}}",
        maxRetries=0,
    )
    return project["id"], task_type["id"]
