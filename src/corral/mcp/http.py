"""``/mcp`` on ``corral server``: MCP's streamable HTTP transport behind Corral's auth.

Every request is authenticated as the HTTP faces authenticate theirs (Bearer:
an API token, a login JWT or a TaskDriver session token), counted against the
same rate limits, and refused in JSON (401, 403, 429) before the SDK reads it.
The principal then rides in the ASGI scope to the tools (``caller.py``), so a
revoked token stops working mid-session (within the token cache's two seconds).

Sessions are the SDK's stateful ones, kept by the replica that opened them
(clients of the session-less 2026-07-28 protocol need none).
The standalone GET stream is refused (405): Corral sends no server-initiated
messages, and an idle stream held open would only delay a server's stop. DNS
rebinding protection is off: it guards servers that trust ambient credentials,
and ``/mcp`` takes none (no cookie, only an ``Authorization`` header).
"""

from __future__ import annotations

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from corral import errors
from corral.api.deps import bearer_token
from corral.api.ratelimit import rate_limits_of
from corral.api.responses import JSON
from corral.auth.jwt_tokens import looks_like_jwt
from corral.domain.principals import Principal
from corral.mcp.caller import PRINCIPAL_KEY
from corral.mcp.server import build_server
from corral.services.container import Services
from corral.services.sessions import is_session_token

STATUS: list[tuple[type[errors.CorralError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
    (errors.CorralError, 400),
]


async def authenticate(request: Request, services: Services) -> Principal:
    """The caller, within its rate budget; failures counted per client IP."""
    limits = rate_limits_of(request)
    await limits.before_authentication(request)
    try:
        principal = await _principal(bearer_token(request), services)
    except errors.Unauthenticated:
        await limits.authentication_failed(request)
        raise
    await limits.authenticated(request, principal)
    return principal


async def _principal(token: str | None, services: Services) -> Principal:
    if token is None:
        raise errors.Unauthenticated("missing bearer token: send Authorization: Bearer <token>")
    if looks_like_jwt(token):
        return await services.accounts.authenticate(token)
    if is_session_token(token):
        return await services.sessions.authenticate(token)
    return await services.tokens.authenticate(token)


def refusal(exc: errors.CorralError) -> JSON:
    status = next(code for kind, code in STATUS if isinstance(exc, kind))
    response = JSON({"error": exc.message, "status": status}, status_code=status)
    if isinstance(exc, errors.Unauthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after is not None:  # 429 and 503: when to come back
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


class McpEndpoint:
    """The ASGI app at ``/mcp``: authenticate, then hand over to the SDK's manager."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self._manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.method == "GET":
            headers = {"Allow": "POST, DELETE"}
            await JSON({"error": "no server-initiated stream here", "status": 405}, 405, headers)(
                scope, receive, send
            )
            return
        services: Services = request.app.state.services
        try:
            principal = await authenticate(request, services)
        except errors.CorralError as exc:
            await refusal(exc)(scope, receive, send)
            return
        scope.setdefault("state", {})[PRINCIPAL_KEY] = principal
        await self._manager.handle_request(scope, receive, send)


def endpoint_for(services: Services) -> tuple[McpEndpoint, StreamableHTTPSessionManager]:
    """The ``/mcp`` app over ``services``, and the session manager it needs running."""
    server = build_server(services)
    off = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    server.streamable_http_app(json_response=True, transport_security=off)  # makes the manager
    manager = server.session_manager
    return McpEndpoint(manager), manager
