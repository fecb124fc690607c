"""``PageRoute``: every dashboard route answers HTML, with the page headers, and turns
the core's errors into a page (or, for a missing session, a redirect to sign in)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute

from corral import errors
from corral.api.dashboard.security import PAGE_HEADERS
from corral.api.dashboard.session import LoginRequired, Viewer, current_viewer
from corral.api.dashboard.templating import TEMPLATES

STATUS: list[tuple[type[errors.CorralError], int, str]] = [
    (errors.NotFound, 404, "Not found"),
    (errors.Forbidden, 403, "Not allowed"),
    (errors.Unauthenticated, 401, "Please sign in"),
    (errors.RateLimited, 429, "Too many requests"),
    (errors.Conflict, 409, "Conflict"),
    (errors.TooLarge, 413, "Too large"),
    (errors.InvalidInput, 400, "Invalid input"),
    (errors.Unavailable, 503, "Unavailable"),
    (errors.CorralError, 400, "Error"),
]


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    context = {"title": title, "message": message, "status": status, "viewer": None}
    return TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)


def wants_html(request: Request) -> bool:
    """A browser navigating (``Accept: text/html...``), not an API client: those send
    ``application/json`` or ``*/*`` and keep their dialect's JSON errors."""
    accept = request.headers.get("accept", "").lower()
    return request.method in ("GET", "HEAD") and "text/html" in accept


async def not_found_page(request: Request) -> Response:
    """The dashboard's own 404, for a URL no route serves, opened in a browser: with
    the navigation when the browser is signed in, so the way back is one click."""
    try:
        viewer: Viewer | None = await current_viewer(request, request.app.state.services)
    except (LoginRequired, errors.CorralError):
        viewer = None
    message = f"There is no page at {request.url.path}."
    context = {"title": "Page not found", "message": message, "status": 404, "viewer": viewer}
    response = TEMPLATES.TemplateResponse(request, "error.html", context, status_code=404)
    response.headers.update(PAGE_HEADERS)
    return response


class PageRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                response = RedirectResponse(f"/login?next={target}", status_code=303)
            except errors.CorralError as exc:
                status, title = next((s, t) for k, s, t in STATUS if isinstance(exc, k))
                response = error_page(request, status, title, exc.message)
                if exc.retry_after is not None:  # 429 and 503: when to come back
                    response.headers["Retry-After"] = str(exc.retry_after)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                response = error_page(request, 400, "Invalid input", str(first.get("msg", "")))
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return page
