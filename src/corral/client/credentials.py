"""Where a client finds its dispatcher and token: arguments, then ``CORRAL_*``, then the
saved login. One function, ``resolve``, serves the CLI and the SDK alike.

``corral login`` saves the login to ``$XDG_CONFIG_HOME/corral/config.json``
(``~/.config/corral/config.json``), created with mode 0600 from its first byte
because it holds a secret, in a directory of mode 0700. Arguments and the
environment override it, so scripts never depend on it.

The saved token is sent only to the server it was saved for: with another URL
given (``--server`` or ``CORRAL_URL``) and no token, ``resolve`` returns no
token rather than hand one dispatcher's credential to another. A URL may list
replicas, comma-separated (``corral login http://a:3000,http://b:3000``); the
saved token then goes to any of those, and to no other.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://127.0.0.1:3000"


class CredentialsError(Exception):
    """The saved login exists but cannot be read."""


@dataclass(frozen=True, slots=True)
class SavedLogin:
    """What ``corral login`` keeps. ``token_id`` names a personal token that
    ``corral logout`` revokes; a token given with ``--token`` has none."""

    url: str
    token: str
    token_id: str | None = None
    email: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "corral" / "config.json"


def load_saved() -> SavedLogin | None:
    """The saved login, or None when there is none; ``CredentialsError`` when unreadable."""
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not data.get("url") or not data.get("token"):
        return None
    extra = {k: str(data[k]) for k in ("token_id", "email") if data.get(k)}
    return SavedLogin(url=str(data["url"]).rstrip("/"), token=str(data["token"]), **extra)


def save_login(login: SavedLogin) -> Path:
    """Write the login atomically; the file is 0600 from its first byte."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(login.as_json(), out)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def forget_login() -> SavedLogin | None:
    """Delete the saved login and return what it was (None: there was none)."""
    try:
        saved = load_saved()
    except CredentialsError:
        saved = None
    config_path().unlink(missing_ok=True)
    return saved


def resolve(url: str | None = None, token: str | None = None) -> tuple[str, str | None]:
    """The dispatcher URL and token to use: arguments, then ``CORRAL_URL`` and
    ``CORRAL_TOKEN``, then the saved login (its token for its own URL only), then the
    default URL. The token is None when none is known for that URL.
    """
    url = (url or os.environ.get("CORRAL_URL") or "").rstrip("/") or None
    token = token or os.environ.get("CORRAL_TOKEN") or None
    saved = load_saved() if url is None or token is None else None
    if url is None:
        url = saved.url if saved is not None else DEFAULT_URL
    if token is None and saved is not None and _servers(url) <= _servers(saved.url):
        token = saved.token
    return url, token


def _servers(url: str) -> set[str]:
    """The replicas a (comma-separated) URL names."""
    return {part.strip().rstrip("/") for part in url.split(",") if part.strip()}
