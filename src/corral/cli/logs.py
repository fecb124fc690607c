"""Structured logs: one JSON object per line with a stable ``action`` name.

Environment values never reach a log line: no caller logs them on purpose, and
an ``extra`` field named like a job environment is masked here in case one ever does.

Nor do tokens given in a query string (``ws /api/jobs/stream?token=...``, which
browsers need): uvicorn logs a WebSocket handshake's path with its query at
info level, and the access log every request's. ``RedactQueryTokens`` sits on
the one handler every logger (uvicorn's included, which propagate to the root
since the server runs with ``log_config=None``) writes through.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}
_MASKED = frozenset({"env", "env_variables", "secret_env"})
# A query parameter whose value is a credential, as far as the next ``&``, quote or space.
_QUERY_SECRET = re.compile(
    r"([?&](?:token|access_token|api_key|auth_token)=)[^&\s\"']*", re.IGNORECASE
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _QUERY_SECRET.sub(r"\1" + REDACTED, text)


class RedactQueryTokens(logging.Filter):
    """Blank credentials in query strings, in the message and in each of its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        for key in _MASKED & doc.keys():
            doc[key] = "********"
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactQueryTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
