"""One default TLS context for every httpx client of the test process.

httpx builds a new ``ssl.SSLContext`` for each ``Client``, loading certifi's bundle of
about 150 CA certificates: some 40 ms of CPU, even for a client that only ever speaks
plain HTTP to 127.0.0.1. The tests make thousands of clients (one per ``with
live.client()``, one per ``httpx.get`` in a polling loop), which came to minutes of
CPU per run. Here the default context (``verify=True``, no client certificate) is
built once per CA setting and shared: the same certificates, checked the same way;
any other ``verify`` (a test's own CA, ``False``) still gets a context of its own.
``tests/conftest.py`` installs it before any test module is imported.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any

import httpx._transports.default as _transports

_build = _transports.create_ssl_context


@functools.cache
def _default_context(trust_env: bool, cert_file: str | None, cert_dir: str | None) -> Any:
    return _build(verify=True, cert=None, trust_env=trust_env)


def _shared_context(
    verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
) -> ssl.SSLContext:
    if verify is True and cert is None:
        # httpx reads these two variables itself when trust_env is on: part of the key.
        cert_file, cert_dir = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
        context: ssl.SSLContext = _default_context(trust_env, cert_file, cert_dir)
        return context
    return _build(verify=verify, cert=cert, trust_env=trust_env)


def install() -> None:
    """Make httpx's transports take the shared default context."""
    _transports.create_ssl_context = _shared_context  # type: ignore[assignment]
