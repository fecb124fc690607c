"""Issue 18: every MCP tool and prompt has a right in the scoping table, so none can be
listed to (or called by) a token that was never meant to see it."""

from __future__ import annotations

from pathlib import Path

from corral.domain.principals import Principal, Role
from corral.mcp.rights import PROMPT_RIGHTS, TOOL_RIGHTS, allowed
from corral.mcp.server import build_server
from corral.services.container import Services, open_store
from corral.settings import ServerSettings


async def test_item18_every_tool_and_prompt_has_a_right(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path)
    server = build_server(Services(open_store(settings), settings))
    assert {tool.name for tool in await server.list_tools()} == set(TOOL_RIGHTS)
    assert {prompt.name for prompt in await server.list_prompts()} == set(PROMPT_RIGHTS)


def test_item18_nothing_is_allowed_without_a_caller() -> None:
    assert not any(allowed(None, right) for right in TOOL_RIGHTS.values())
    worker = Principal(id="w", name="w", role=Role.WORKER)
    assert allowed(worker, TOOL_RIGHTS["health_check"])
    assert not allowed(worker, TOOL_RIGHTS["list_jobs"])
