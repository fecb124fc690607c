"""``corral mcp``: a stdio MCP server that is a proxy of a dispatcher's ``/mcp``.

Desktop agent clients start MCP servers as subprocesses and speak to them over
stdin/stdout. This process holds one MCP session with the dispatcher named by
``--server`` (any replica: it only needs HTTP) and forwards listings, tool
calls and prompts to it unchanged. The tools, their checks and their answers
are therefore exactly those of ``/mcp``: one tool set, one behaviour, the
policy and the rate limits applied once, in the dispatcher.

A call the dispatcher refuses at the HTTP level mid-session (a revoked token, a
rate limit) or cannot answer (network) comes back as a tool result flagged
``isError`` saying so, so the agent reads why instead of losing its MCP server.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from corral import __version__
from corral.mcp.guide import INSTRUCTIONS

REFUSALS = frozenset({401, 403, 429})  # what /mcp answers before the SDK sees a request
KEEP_ALIVE_SECONDS = 600.0  # well inside the server's 30-minute idle timeout


def endpoint(server_url: str) -> str:
    return server_url.rstrip("/") + "/mcp"


class Proxy:
    """The stdio server's handlers, each one call to the upstream session."""

    def __init__(self, upstream: Client, http: httpx2.AsyncClient, server_url: str) -> None:
        self._up = upstream
        self._http = http
        self._url = server_url

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await self._up.list_tools(cursor=params.cursor if params else None)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await self._up.call_tool(params.name, params.arguments or {})
        except Exception as exc:  # refused, or not answered: say why, as a result
            refused = await _refusal(self._http, self._url)
            if refused is None and isinstance(exc, MCPError):
                raise  # a protocol error of the dispatcher's own: passed on as one
            text = (
                f"refused by the Corral dispatcher: {refused}"
                if refused
                else f"unavailable: the Corral dispatcher did not answer ({reason(exc)})"
            )
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=text)], is_error=True
            )

    async def list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await self._up.list_prompts(cursor=params.cursor if params else None)

    async def get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return await self._up.get_prompt(params.name, params.arguments)

    def server(self) -> Server[Any]:
        return Server(
            "corral",
            title="Corral",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self.list_tools,
            on_call_tool=self.call_tool,
            on_list_prompts=self.list_prompts,
            on_get_prompt=self.get_prompt,
        )


def reason(exc: BaseException) -> str:
    """The innermost message of an exception group (anyio wraps transport errors)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return str(exc) or type(exc).__name__


async def serve(server_url: str, token: str) -> None:
    """Open the upstream session first (a bad URL or token fails here, at start), then
    serve stdin/stdout until the client closes them."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with http:
        transport = streamable_http_client(endpoint(server_url), http_client=http)
        # "legacy": the initialize handshake opens a session, which keeps the agent
        # name this client works under from one call to the next.
        client = Client(transport, mode="legacy")
        try:
            await client.__aenter__()
        except Exception as exc:
            raise Refused(await _refusal(http, server_url) or reason(exc)) from None
        try:
            server = Proxy(client, http, server_url).server()
            async with stdio_server() as (read, write), anyio.create_task_group() as tasks:
                tasks.start_soon(_keep_alive, client)
                await server.run(read, write, server.create_initialization_options())
                tasks.cancel_scope.cancel()
        finally:
            await client.__aexit__(None, None, None)


async def _keep_alive(client: Client) -> None:
    """Ping the dispatcher now and then: it ends a session idle for half an hour, and a
    desktop client may well sit that long between two tool calls."""
    while True:
        await anyio.sleep(KEEP_ALIVE_SECONDS)
        with anyio.move_on_after(KEEP_ALIVE_SECONDS):
            try:
                await client.send_ping()
            except Exception:  # the next tool call will say what is wrong
                continue


class Refused(Exception):
    """The dispatcher would not open a session: its own words, with the HTTP status."""


async def _refusal(http: httpx2.AsyncClient, server_url: str) -> str | None:
    """Why the dispatcher refuses this token, asked again plainly, or None when it does
    not: the SDK keeps the status of a refused request to itself, and "401: invalid or
    revoked token" is what a user needs. ``/mcp`` authenticates before it reads a
    body, so an empty one tells a refusal (401, 403, 429) from anything else."""
    try:
        answer = await http.post(endpoint(server_url), json={})
    except httpx2.HTTPError:
        return None
    if answer.status_code not in REFUSALS:
        return None
    try:
        message = str(answer.json().get("error", ""))
    except ValueError:
        message = answer.text[:200]
    return f"{answer.status_code}: {message}"
