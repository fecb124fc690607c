"""What a value must be for the store to keep it, and the bounds on a final report.

Free-form JSON (a report's ``result``, task ``variables``, worker metadata) is
stored as JSON text and read back by every dialect: an integer past 64 bits or
a lone surrogate in a string parses fine but can be neither stored nor
rendered, so it is refused up front as bad input (``unstorable``).

A report's output streams are held to the output cap where they are appended.
Its ``result`` is not output to the store, yet agents fill it with their whole
answer (TaskDriver's ``result`` text, a CMD worker's ``result``), so without a
bound of its own it was the way around the cap.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from corral.domain.jobs import Outcome
from corral.errors import InvalidInput, TooLarge

MAX_ERROR_MESSAGE = 10_000  # characters of a reported error_message kept; the rest is cut
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def unstorable(value: Any, where: str) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored, or None when it can."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return f"{where} is not valid Unicode text"
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{where} does not fit in a 64-bit integer"
    elif isinstance(value, dict):
        for key, item in value.items():
            problem = unstorable(key, where) or unstorable(item, f"{where}.{key}")
            if problem:
                return problem
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = unstorable(item, f"{where}[{index}]")
            if problem:
                return problem
    return None


def bounded_outcome(outcome: Outcome, max_result: int) -> Outcome:
    """The outcome as it may be stored: ``result`` within ``max_result`` bytes of JSON
    (else ``TooLarge``, and nothing is stored), ``error_message`` cut to
    ``MAX_ERROR_MESSAGE`` characters (a worker's last words are kept, not refused)."""
    problem = unstorable(outcome.result, "result")
    if problem:
        raise InvalidInput(problem, field="result")
    if outcome.result is not None and encoded_size(outcome.result) > max_result:
        raise TooLarge(
            f"result exceeds the limit of {max_result} bytes (as JSON)",
            field="result",
            limit=max_result,
        )
    message = outcome.error_message
    if message is not None and len(message) > MAX_ERROR_MESSAGE:
        return dataclasses.replace(outcome, error_message=message[:MAX_ERROR_MESSAGE])
    return outcome


def encoded_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON; anything JSON cannot hold counts as text."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return len(text.encode("utf-8", "surrogatepass"))
