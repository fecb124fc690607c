"""Issue 18: the agent name an MCP session works under, and how refusals read."""

from __future__ import annotations

from corral import errors
from corral.domain.principals import Principal, Role
from corral.mcp.caller import AgentNames, Caller
from corral.mcp.failures import describe

AGENT = Principal(id="tok-1", name="agent", role=Role.AGENT, project_id="p", credential_id="tok-1")


def test_item18_a_session_remembers_the_name_it_took_a_task_under() -> None:
    names, who = AgentNames(), Caller(AGENT, "session:tok-1:s1")
    derived = names.name_for(who, None)
    assert derived.startswith("mcp-") and names.name_for(who, None) == derived
    assert names.name_for(who, "scout") == "scout"
    assert names.name_for(who, None) == derived  # a name given elsewhere is for one call
    assert names.name_for(who, "scout", remember=True) == "scout"
    assert names.name_for(who, None) == "scout"
    other = Caller(AGENT, "session:tok-1:s2")
    assert names.name_for(other, None) not in ("scout", derived)


def test_item18_an_agent_session_works_under_its_own_name() -> None:
    session = Principal(id="s", name="n", role=Role.AGENT, executor_id="bob", project_id="p")
    assert AgentNames().name_for(Caller(session, "credential:s"), None) == "bob"


def test_item18_refusals_read_as_kind_then_message() -> None:
    assert describe(errors.Forbidden("role viewer may not submit")) == (
        "forbidden: role viewer may not submit"
    )
    bad = errors.InvalidInput("must be 1-100", field="limit")
    assert describe(bad) == "invalid argument: must be 1-100 (limit)"
    limited = errors.RateLimited("Rate limit exceeded", retry_after=7)
    assert describe(limited) == "rate limited: Rate limit exceeded; retry after 7 s"
    assert describe(errors.StaleAttempt("lease lost")) == "conflict: lease lost"


def test_item18_the_sdks_argument_check_reads_plainly() -> None:
    from pydantic import BaseModel, ValidationError

    from corral.mcp.failures import tidy

    class get_next_taskArguments(BaseModel):
        projectId: str
        limit: int = 5

    try:
        get_next_taskArguments.model_validate({"projectId": ["x"], "limit": "many"})
    except ValidationError as exc:
        sdk_text = f"Error executing tool get_next_task: {exc}"
    assert tidy(sdk_text) == (
        "Error executing tool get_next_task: invalid argument: projectId: Input should be a "
        "valid string; limit: Input should be a valid integer, unable to parse string as an "
        "integer"
    )
    assert tidy("not found: project not found") == "not found: project not found"
