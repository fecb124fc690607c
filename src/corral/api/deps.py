"""FastAPI dependencies shared by every dialect: the services and the calling principal.

Rate limits are charged here, right after authentication, because this is the
one place every authenticated route passes through and where the principal
(the key of its budget) is first known.

The login cookie is ambient: a browser sends it with whatever a page on any
origin of the same *site* (another port, another subdomain) asks for, and
WebSocket handshakes have no CORS to hide the answer. So a request, HTTP or
WebSocket, authenticated by the cookie alone is refused (403) when its
``Origin`` is neither this server's own (its ``Host``) nor a configured CORS
origin. Tokens in an ``Authorization`` header are never sent by a browser on
its own, so they need no such check.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from corral.api.dialects.taskdriver.errors import TaskDriverRoute
from corral.api.ratelimit import rate_limits_of
from corral.api.route_rights import require_route_right
from corral.auth.jwt_tokens import looks_like_jwt
from corral.domain.principals import Principal, Role
from corral.errors import Forbidden, Unauthenticated
from corral.services.container import Services
from corral.services.sessions import is_session_token


async def get_services(request: Request) -> Services:
    """Async on purpose: FastAPI runs sync dependencies on a thread pool, a costly hop."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def header(connection: HTTPConnection, name: bytes) -> str | None:
    """The first value of a request header (``name`` in lower case, as ASGI servers give
    names), read straight from the scope: authentication reads a few headers on every
    request, and Starlette's ``Headers`` would be built for them."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_token(request: HTTPConnection) -> str | None:
    scheme, _, value = (header(request, b"authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


AUTH_COOKIE = "auth_token"  # CMD Executor's browser sessions carry the JWT here
WORKER_TOKEN_HEADER = "x-worker-token"  # CMD Executor's workers present their token here
_WORKER_TOKEN = WORKER_TOKEN_HEADER.encode()


def presented_token(request: HTTPConnection) -> str | None:
    """The Bearer header wins; the login cookie is the fallback a browser sends."""
    return bearer_token(request) or request.cookies.get(AUTH_COOKIE) or None


def check_cookie_origin(connection: HTTPConnection) -> None:
    """Refuse a cookie-authenticated request sent from a foreign origin (see above)."""
    if bearer_token(connection) is not None or header(connection, _WORKER_TOKEN):
        return
    origin = header(connection, b"origin")
    if origin is None or not connection.cookies.get(AUTH_COOKIE):
        return  # no browser-made cross-origin request, or no cookie to abuse
    allowed: frozenset[str] = getattr(connection.app.state, "cors_origins", frozenset())
    host = header(connection, b"host") or ""
    if origin in allowed or (host and urlsplit(origin).netloc == host):
        return
    raise Forbidden("a login cookie is not accepted from another origin", origin=origin[:200])


async def principal_of(connection: HTTPConnection, services: Services) -> Principal:
    """Who is calling, for HTTP requests and WebSocket handshakes alike, within its budget.

    Failed authentications are counted per client IP so that tokens cannot be
    sprayed; a principal's requests are counted per principal once it is known.
    """
    check_cookie_origin(connection)
    limits = rate_limits_of(connection)
    await limits.before_authentication(connection)
    try:
        principal = await _authenticate(connection, services)
    except Unauthenticated:
        await limits.authentication_failed(connection)
        raise
    await limits.authenticated(connection, principal)
    require_route_right(connection, principal)  # before FastAPI validates anything
    return principal


async def _authenticate(connection: HTTPConnection, services: Services) -> Principal:
    """Each kind of token has its own authority, chosen by where and how it came.

    ``x-worker-token`` carries only opaque worker tokens; login JWTs resolve
    through the accounts; TaskDriver's ``tds_`` session tokens through the agent
    sessions, on TaskDriver's routes only; other opaque ``crl_`` tokens through the
    token table.
    """
    worker_token = header(connection, _WORKER_TOKEN)
    if worker_token:
        principal = await services.tokens.authenticate(worker_token)
        if principal.role != Role.WORKER:
            raise Unauthenticated(f"{WORKER_TOKEN_HEADER} must carry a worker token")
        return principal
    token = presented_token(connection)
    if token is not None and looks_like_jwt(token):
        return await services.accounts.authenticate(token)
    if is_session_token(token):
        principal = await services.sessions.authenticate(token)
    else:
        principal = await services.tokens.authenticate(token)
    # Agent sessions and agent tokens may execute, in one project: held to TaskDriver's
    # routes (which check the project), they cannot claim or report through the
    # executor APIs of the other dialects.
    if principal.role is Role.AGENT and not isinstance(
        connection.scope.get("route"), TaskDriverRoute
    ):
        raise Forbidden("an agent session or agent token is valid only on TaskDriver's API")
    return principal


async def get_principal(request: Request, services: ServicesDep) -> Principal:
    return await principal_of(request, services)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
