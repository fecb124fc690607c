"""Where the CLI finds its dispatcher and token: flags, then ``CORRAL_*``, then the saved login.

``corral login URL --token T`` saves both to ``$XDG_CONFIG_HOME/corral/config.json``
(``~/.config/corral/config.json``), created with mode 0600 because it holds a
secret. Flags and the environment override it, so scripts never depend on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

import typer

DEFAULT_URL = "http://127.0.0.1:3000"


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "corral" / "config.json"


def load() -> dict[str, Any]:
    try:
        data = json.loads(config_path().read_text())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as exc:
        fail(f"cannot read {config_path()}: {exc}")
    return data if isinstance(data, dict) else {}


def save(url: str, token: str) -> Path:
    """Write the login atomically; the file is 0600 from its first byte."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, "token": token}, out)
    os.chmod(partial, 0o600)
    os.replace(partial, path)
    return path


def resolve_credentials(url: str | None, token: str | None) -> tuple[str, str]:
    """The dispatcher URL and token to use; exits with one clear line when no token is known."""
    saved = load() if url is None or token is None else {}
    url = str(url or saved.get("url") or DEFAULT_URL)
    token = token or saved.get("token")
    if not token:
        fail("no token: pass --token, set CORRAL_TOKEN, or run `corral login URL --token T`")
    return url.rstrip("/"), str(token)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit non-zero: the CLI never shows a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
