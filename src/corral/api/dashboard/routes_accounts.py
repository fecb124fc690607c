"""``/admin/users``, ``/admin/tokens`` and ``/tokens``: accounts and API tokens from a browser.

Admins create users, change their role, disable or enable them and reset their
password, and mint, list and revoke every API token. Every signed-in person
mints, lists and revokes their own personal tokens on ``/tokens``. Every page
and form goes through the same account and token services as the admin API,
so the same rules hold (the password policy, no self-lockout, admins only); a
refused form comes back with the reason and status 400 or 409, and the person's
typed values except passwords. A minted token's secret is shown once, in the
answer to the form that minted it, never in a URL.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from corral.api.dashboard.routing import PageRoute
from corral.api.dashboard.session import CsrfViewerDep, Viewer, ViewerDep
from corral.api.dashboard.templating import TEMPLATES
from corral.api.deps import ServicesDep
from corral.auth.policy import Action, require
from corral.errors import AlreadyExists, InvalidInput
from corral.services.container import Services

router = APIRouter(route_class=PageRoute, include_in_schema=False)
USER_ROLES = ("viewer", "submitter", "admin")
TOKEN_ROLES = ("viewer", "submitter", "admin", "worker")
LIFETIMES = (
    ("7", "7 days"),
    ("30", "30 days"),
    ("90", "90 days"),
    ("365", "1 year"),
    ("", "never"),
)
NOTICES = {
    "created": "User created.",
    "changed": "User changed.",
    "revoked": "Token revoked.",
}


async def _form(request: Request) -> dict[str, str]:
    """The text fields of the posted form (already parsed, and cached, by the CSRF check)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}


def _lifetime(days: str) -> int | None:
    if not days:
        return None
    if not days.isdigit() or not 0 < int(days) <= 3660:
        raise InvalidInput("expiry must be a number of days, or never", field="expires")
    return int(days) * 86400


# --- users (admins) ---------------------------------------------------------------------


@router.get("/admin/users")
async def users_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, done: str = ""
) -> Response:
    return await _users(request, viewer, services, notice=NOTICES.get(done))


async def _users(
    request: Request,
    viewer: Viewer,
    services: Services,
    *,
    notice: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    context = {
        "viewer": viewer,
        "nav": "users",
        "users": await services.accounts.list_users(viewer.principal),
        "roles": USER_ROLES,
        "notice": notice,
        "error": error,
        "values": values or {"role": "viewer"},
    }
    return TEMPLATES.TemplateResponse(request, "users.html", context, status_code=status)


@router.post("/admin/users")
async def create_user(request: Request, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    form = await _form(request)
    email, role, password = form.get("email", ""), form.get("role", ""), form.get("password", "")
    try:
        await services.accounts.create_user(viewer.principal, email, password, role)
    except (InvalidInput, AlreadyExists) as exc:
        status = 409 if isinstance(exc, AlreadyExists) else 400
        kept = {"email": email, "role": role}  # never the password
        return await _users(
            request, viewer, services, error=exc.message, values=kept, status=status
        )
    return RedirectResponse("/admin/users?done=created", status_code=303)


@router.post("/admin/users/{user_id}")
async def change_user(
    user_id: str, request: Request, viewer: CsrfViewerDep, services: ServicesDep
) -> Response:
    """One form per action on a user row: ``role``, ``disable``, ``enable`` or ``password``."""
    form = await _form(request)
    changes: dict[str, dict[str, Any]] = {
        "role": {"role": form.get("role", "")},
        "disable": {"disabled": True},
        "enable": {"disabled": False},
        "password": {"password": form.get("password", "")},
    }
    change = changes.get(form.get("action", ""), {})
    try:
        if not change:
            raise InvalidInput("unknown action", field="action")
        await services.accounts.update_user(viewer.principal, user_id, **change)
    except InvalidInput as exc:
        return await _users(request, viewer, services, error=exc.message, status=400)
    return RedirectResponse("/admin/users?done=changed", status_code=303)


# --- tokens: every token (admins), one's own (everyone) ------------------------------------


@router.get("/admin/tokens")
async def tokens_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, done: str = ""
) -> Response:
    return await _tokens(request, viewer, services, every=True, notice=NOTICES.get(done))


@router.get("/tokens")
async def my_tokens_page(
    request: Request, viewer: ViewerDep, services: ServicesDep, done: str = ""
) -> Response:
    return await _tokens(request, viewer, services, every=False, notice=NOTICES.get(done))


async def _tokens(
    request: Request,
    viewer: Viewer,
    services: Services,
    *,
    every: bool,
    notice: str | None = None,
    error: str | None = None,
    minted: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    if every:
        views = await services.tokens.list_all(viewer.principal)
        emails = {u.id: u.email for u in await services.accounts.list_users(viewer.principal)}
    else:
        views = await services.tokens.list_personal(viewer.principal)
        emails = {viewer.principal.id: viewer.principal.name}
    context = {
        "viewer": viewer,
        "nav": "all-tokens" if every else "tokens",
        "every": every,
        "tokens": sorted(views, key=lambda v: v.created_at, reverse=True),
        "emails": emails,
        "now": time.time(),
        "roles": TOKEN_ROLES,
        "lifetimes": LIFETIMES,
        "notice": notice,
        "error": error,
        "minted": minted,
    }
    return TEMPLATES.TemplateResponse(request, "tokens.html", context, status_code=status)


@router.post("/admin/tokens")
async def mint_token(request: Request, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    return await _mint(request, viewer, services, every=True)


@router.post("/tokens")
async def mint_my_token(request: Request, viewer: CsrfViewerDep, services: ServicesDep) -> Response:
    return await _mint(request, viewer, services, every=False)


async def _mint(request: Request, viewer: Viewer, services: Services, *, every: bool) -> Response:
    form = await _form(request)
    name = form.get("name", "").strip()[:200]
    try:
        lifetime = _lifetime(form.get("expires", ""))
        if every:
            record, secret = await services.tokens.create(
                viewer.principal, form.get("role", ""), name, expires_in=lifetime
            )
        else:
            record, secret = await services.tokens.create_personal(viewer.principal, name, lifetime)
    except InvalidInput as exc:
        return await _tokens(request, viewer, services, every=every, error=exc.message, status=400)
    minted = {"id": record.id, "name": record.name, "secret": secret}
    return await _tokens(request, viewer, services, every=every, minted=minted)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    token_id: str, request: Request, viewer: CsrfViewerDep, services: ServicesDep
) -> Response:
    """Admins revoke any token from ``/admin/tokens``; anyone their own from ``/tokens``."""
    every = (await _form(request)).get("from") == "admin"
    if every:
        require(viewer.principal, Action.ADMIN)
        await services.tokens.revoke(viewer.principal, token_id)
    else:
        await services.tokens.revoke_personal(viewer.principal, token_id)
    target = "/admin/tokens" if every else "/tokens"
    return RedirectResponse(f"{target}?done=revoked", status_code=303)
