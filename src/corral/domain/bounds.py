"""Bounds on what one final report may store, beside the output cap the store applies.

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
from corral.errors import TooLarge

MAX_ERROR_MESSAGE = 10_000  # characters of a reported error_message kept; the rest is cut


def bounded_outcome(outcome: Outcome, max_result: int) -> Outcome:
    """The outcome as it may be stored: ``result`` within ``max_result`` bytes of JSON
    (else ``TooLarge``, and nothing is stored), ``error_message`` cut to
    ``MAX_ERROR_MESSAGE`` characters (a worker's last words are kept, not refused)."""
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
