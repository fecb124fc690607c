"""Log lines: JSON or text by where stderr goes, UTC milliseconds, no ANSI copies."""

from __future__ import annotations

import io
import logging
import os
import pty

import orjson

from corral.cli.logs import JsonFormatter, TextFormatter, choose_format, timestamp


def _record() -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "Started %d", (7,), None)
    record.created = 1796261749.1234  # 2026-12-03T01:35:49.123Z
    record.color_message = "Started \x1b[36m%d\x1b[0m"
    record.action = "x"
    record.secret_env = {"T": "value"}
    return record


def test_item3_timestamps_are_utc_with_milliseconds() -> None:
    assert timestamp(1796261749.1234) == "2026-12-03T01:35:49.123Z"


def test_item3_json_carries_extras_but_not_color_message() -> None:
    doc = orjson.loads(JsonFormatter().format(_record()))
    assert doc["ts"] == "2026-12-03T01:35:49.123Z" and doc["msg"] == "Started 7"
    assert doc["action"] == "x" and doc["secret_env"] == "********"
    assert "color_message" not in doc


def test_item3_text_is_one_readable_line() -> None:
    line = TextFormatter().format(_record())
    assert line == (
        "2026-12-03T01:35:49.123Z INFO    uvicorn.error: Started 7  action=x secret_env=********"
    )


def test_item3_auto_is_text_on_a_terminal_and_json_elsewhere() -> None:
    primary, secondary = pty.openpty()
    try:
        with open(secondary, "w", closefd=False) as terminal:
            assert choose_format("auto", terminal) == "text"
    finally:
        os.close(primary)
        os.close(secondary)
    assert choose_format("auto", io.StringIO()) == "json"
    assert choose_format("json", io.StringIO()) == "json"
    assert choose_format("text", io.StringIO()) == "text"


def test_item3_text_fields_cannot_forge_lines_or_send_escape_codes() -> None:
    record = logging.LogRecord("corral.auth", logging.WARNING, "", 0, "login failed", (), None)
    record.email = "x@y\n2026-01-01T00:00:00.000Z INFO forged \x1b[2J"
    line = TextFormatter().format(record)
    assert "\n" not in line and "\x1b" not in line
    assert "email='x@y\\n2026" in line
