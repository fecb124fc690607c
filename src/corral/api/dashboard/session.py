"""Who is looking at a page: the principal behind the ``auth_token`` cookie.

Pages use the same ``principal_of`` as every API, so rate limits and revoked or
disabled logins behave identically; only the answer differs: a page without a
valid session redirects to the sign-in form instead of answering 401.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from corral.api.dashboard.security import check_csrf, csrf_token
from corral.api.deps import AUTH_COOKIE, ServicesDep, principal_of
from corral.auth.policy import Action, can, require
from corral.domain.principals import Principal
from corral.errors import Unauthenticated


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to ``/login``."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person, with what the templates need to show or hide controls."""

    principal: Principal
    session_token: str
    csrf: str

    @property
    def can_submit(self) -> bool:
        return can(self.principal, Action.SUBMIT)

    def can_cancel(self, owner_id: str) -> bool:
        return can(self.principal, Action.CANCEL, owner_id)

    @property
    def is_admin(self) -> bool:
        return can(self.principal, Action.ADMIN)

    @property
    def can_manage_workers(self) -> bool:
        """Drain and remove any worker: admins. The only others the API lets drain or
        remove one are the tokens that registered it, and those never see a page."""
        return self.is_admin


async def current_viewer(request: Request, services: ServicesDep) -> Viewer:
    token = request.cookies.get(AUTH_COOKIE)
    if not token:
        raise LoginRequired
    try:
        principal = await principal_of(request, services)
    except Unauthenticated:
        raise LoginRequired from None
    require(principal, Action.READ)  # pages are for people: worker and agent tokens get 403
    return Viewer(principal, token, csrf_token(services.accounts.secret, token))


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


async def require_csrf(request: Request, viewer: ViewerDep, services: ServicesDep) -> Viewer:
    """For every state-changing form: the session's token must come back with it."""
    form = await request.form()
    presented = form.get("csrf")
    check_csrf(
        request,
        services.accounts.secret,
        viewer.session_token,
        presented if isinstance(presented, str) else None,
    )
    return viewer


CsrfViewerDep = Annotated[Viewer, Depends(require_csrf)]
