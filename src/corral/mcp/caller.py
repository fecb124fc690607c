"""Who is calling a tool: the principal the ``/mcp`` endpoint authenticated, and the
key of the caller's MCP session (for the agent name a session remembers).

The HTTP wrapper (``http.py``) authenticates every POST and leaves the principal
in the ASGI scope's state; tools and the listing filter read it from the
request the SDK hands them. There is no other way in: a message without an
authenticated request behind it is refused.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from corral.domain.principals import Principal

PRINCIPAL_KEY = "corral.mcp.principal"
SESSION_HEADER = "mcp-session-id"
REMEMBERED = 10_000  # agent names kept per process, least recently used dropped first


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    session_key: str  # the MCP session, or the credential when the protocol has no session


def principal_of_request(request: Any) -> Principal | None:
    scope = getattr(request, "scope", None)
    if not isinstance(scope, dict):
        return None
    principal = scope.get("state", {}).get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


def caller_of_request(request: Any) -> Caller:
    principal = principal_of_request(request)
    if principal is None:
        raise ToolError("not authenticated: connect to /mcp with a Bearer token")
    session = request.headers.get(SESSION_HEADER)
    # A session's memory is its credential's too: another token presenting a stolen
    # session id finds nothing there.
    key = f"session:{principal.id}:{session}" if session else f"credential:{principal.id}"
    return Caller(principal, key)


def caller(ctx: Context[Any, Any]) -> Caller:
    return caller_of_request(ctx.request_context.request)


class AgentNames:
    """The agent name each session works under when a call names none.

    A name given to ``get_next_task`` is remembered for the session (a name given to
    another tool is used for that call only); without one,
    an agent session's own name, else a name derived from the session key, so a
    client that never names itself still gets the same name on every call (and
    on every replica, for the credential-keyed sessions of the stateless protocol).
    """

    def __init__(self) -> None:
        self._names: OrderedDict[str, str] = OrderedDict()

    def remember(self, who: Caller, name: str) -> None:
        self._names[who.session_key] = name
        self._names.move_to_end(who.session_key)
        while len(self._names) > REMEMBERED:
            self._names.popitem(last=False)

    def name_for(self, who: Caller, given: str | None, *, remember: bool = False) -> str:
        """``given`` if any (remembered when taking a task), else the session's name."""
        if given:
            if remember:
                self.remember(who, given)
            return given
        known = self._names.get(who.session_key)
        if known is not None:
            return known
        if who.principal.executor_id:
            return who.principal.executor_id
        digest = hashlib.sha256(who.session_key.encode()).hexdigest()[:12]
        return f"mcp-{digest}"
