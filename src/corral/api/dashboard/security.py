"""What every dashboard page carries: a strict CSP, no caching, and CSRF tokens.

The CSRF token is an HMAC of the session cookie under the shared signing secret,
so every replica computes the same token without storing anything, and a token
is worthless for any other session. State-changing forms also must come from
this origin (``Origin``/``Referer``), which ``SameSite=Lax`` already implies for
modern browsers; the token covers the rest.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

from corral.errors import Forbidden

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def csrf_token(secret: bytes, session_token: str) -> str:
    return hmac.new(secret, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, secret: bytes, session_token: str, presented: str | None) -> None:
    """Refuse a state change that did not come from a page of this session."""
    expected = csrf_token(secret, session_token)
    if not presented or not hmac.compare_digest(expected, presented):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page")
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise Forbidden("cross-origin form submission refused")


def safe_next(target: str | None) -> str:
    """Only a path on this site: never ``//host`` or a scheme (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
