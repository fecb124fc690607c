"""Signing in and out of the dashboard with the same accounts as the APIs.

The login form has no session yet, so its CSRF token is a double-submit pair: a
random cookie and the same value in the form. Signing in sets the ``auth_token``
cookie (HttpOnly, SameSite=Lax) that every API also accepts.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.security import safe_next
from corral.api.dashboard.session import CsrfViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import AUTH_COOKIE, ServicesDep
from corral.api.ratelimit import rate_limits_of
from corral.auth.jwt_tokens import LIFETIME_SECONDS
from corral.errors import Forbidden, InvalidCredentials, RateLimited

router = APIRouter(route_class=PageRoute, include_in_schema=False)
LOGIN_CSRF_COOKIE = "corral_login_csrf"


def _login_form(request: Request, next_url: str, error: str | None, status: int) -> Response:
    token = secrets.token_urlsafe(24)
    context = {"viewer": None, "next": next_url, "error": error, "login_csrf": token}
    response = TEMPLATES.TemplateResponse(request, "login.html", context, status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.get("/login")
async def login_page(request: Request, next: str = "/") -> Response:
    return _login_form(request, safe_next(next), None, 200)


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not secrets.compare_digest(expected, csrf):
        raise Forbidden("the sign-in form expired: reload the page")
    try:
        async with rate_limits_of(request).login_attempt(request, email):
            session = await services.accounts.login(email, password)
    except InvalidCredentials:
        return _login_form(request, target, "Email or password incorrect", 401)
    except RateLimited as exc:
        wait = exc.retry_after
        return _login_form(request, target, f"Too many attempts: try again in {wait} s", 429)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        AUTH_COOKIE,
        session.token,
        max_age=LIFETIME_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    await services.accounts.logout(viewer.session_token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(AUTH_COOKIE, httponly=True, samesite="lax")
    return response
