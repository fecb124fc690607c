"""A JSON response rendered by orjson, for handlers that build their response themselves.

Rendering never fails: an error body may quote what the request held (a
validation error echoes the offending value), and a request can hold what
orjson refuses, an integer past 64 bits or a string with a lone surrogate.
Such content is rendered again through ``plain``, which turns every value JSON
cannot carry faithfully into text, so the caller gets its 4xx rather than a 500.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from starlette.responses import Response

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:  # orjson.JSONEncodeError: something it cannot encode
            return orjson.dumps(plain(content))


def plain(value: Any) -> Any:
    """``value`` with everything orjson refuses stringified: oversized integers, lone
    surrogates (replaced), non-finite floats, non-string keys and unknown types."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {str(plain(key)): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return plain(str(value))
