"""A few native API calls for the account commands (login, whoami, tokens) over httpx.

Errors keep the server's own message: ``RemoteError`` carries the native
``{"error", "context"}`` text and the status, and ``remote_errors`` turns it into
one line on stderr and a non-zero exit, like every other CLI failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from corral.cli.config import fail

if TYPE_CHECKING:
    import httpx


class RemoteError(Exception):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return f"{self.message} (HTTP {self.status})" if self.status else self.message


class Remote:
    """One dispatcher, one credential (``token`` may be None for the login itself)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        from corral.client.session import DEFAULT_RETRY_FOR, sync_http

        self.url = url.rstrip("/")
        headers = {"User-Agent": "corral-cli"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = sync_http(self.url, headers, 30.0, DEFAULT_RETRY_FOR)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise RemoteError(_message(response), response.status_code)
        return response.json() if response.content else None


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("error", "message"):  # native, then CMD Executor's login answer
            if isinstance(body.get(key), str):
                return str(body[key])
    return response.text.strip()[:200] or response.reason_phrase


@contextmanager
def remote_errors() -> Iterator[None]:
    """A refused or failed call: one line, exit 2 for a refusal of the input, else 1."""
    try:
        yield
    except RemoteError as exc:
        fail(str(exc), 2 if exc.status in (400, 404, 409, 422) else 1)
