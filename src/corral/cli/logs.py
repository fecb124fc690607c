"""Structured logs with a stable ``action`` name: JSON lines, or text for a person.

``--log-format auto`` (the default) writes one human-readable line per record when
stderr is a terminal and one JSON object per line otherwise (a file, journald, a
collector); ``text`` and ``json`` force either. Both carry the UTC time with
milliseconds and every ``extra`` field, except uvicorn's ``color_message`` (the
same message again, with ANSI escapes).

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
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import typer

# Not ``extra`` fields: the record's own attributes, and uvicorn's ANSI-coloured copy
# of its message, which would put escape codes in every JSON line.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "color_message",
}
FORMATS = ("auto", "text", "json")


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}, not {value!r}")
    return value


LogFormatOpt = typer.Option(
    "auto",
    "--log-format",
    envvar="CORRAL_LOG_FORMAT",
    callback=_check_format,
    help="text (for a person), json (one object per line), or auto: text on a terminal.",
)
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


def timestamp(created: float) -> str:
    """``2026-12-03T01:55:49.123Z``: UTC, milliseconds, sorts as text."""
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ``extra`` fields, environment-like ones masked."""
    found = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    for key in _MASKED & found.keys():
        found[key] = "********"
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(extras(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-12-03T01:55:49.123Z INFO    corral.server: message  action=x job_id=y``"""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={_text(v)}" for k, v in extras(record).items())
        line = f"{timestamp(record.created)} {record.levelname:<7} {record.name}: "
        line += record.getMessage() + (f"  {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    """A field value as one token: quoted when it has spaces, and escaped when it has
    control characters, so that a hostile value (an email typed at the login page)
    can neither forge a line nor send escape codes to the operator's terminal."""
    text = str(value)
    return repr(text) if not text or " " in text or not text.isprintable() else text


def choose_format(log_format: str, stream: TextIO) -> str:
    """``auto``: text for a person at a terminal, JSON for everything else."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def setup_logging(level: str, log_format: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    chosen = choose_format(log_format, sys.stderr)
    handler.setFormatter(TextFormatter() if chosen == "text" else JsonFormatter())
    handler.addFilter(RedactQueryTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
