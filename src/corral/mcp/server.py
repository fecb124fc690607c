"""The MCP server: every tool and prompt, over one set of services, behind the
scoped-access middleware (``rights.py``)."""

from __future__ import annotations

import logging
from typing import Any

from mcp.server.mcpserver import MCPServer

from corral import __version__
from corral.mcp import prompts, tools_agents, tools_commands, tools_projects, tools_tasks
from corral.mcp.caller import AgentNames
from corral.mcp.guide import INSTRUCTIONS
from corral.mcp.rights import ScopedAccess
from corral.services.container import Services


def build_server(services: Services) -> MCPServer[Any]:
    server = _quiet_server()
    names = AgentNames()
    tools_projects.register(server, services)
    tools_tasks.register(server, services)
    tools_agents.register(server, services, names)
    tools_commands.register(server, services)
    prompts.register(server)
    return server


def _quiet_server() -> MCPServer[Any]:
    """The SDK configures the root logger when a server is made (``basicConfig``);
    Corral owns its logging, so the root logger is put back as it was."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        return MCPServer(
            "corral",
            title="Corral",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level="WARNING",
            middleware=[ScopedAccess()],
        )
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
