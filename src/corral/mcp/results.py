"""Tool results are JSON text: the same views the HTTP faces render, dumped by orjson."""

from __future__ import annotations

from typing import Any

import orjson

from corral.api.responses import plain


def dump(data: Any) -> str:
    try:
        return orjson.dumps(data).decode()
    except TypeError:  # what orjson refuses (oversized integers...) goes as text
        return orjson.dumps(plain(data)).decode()
