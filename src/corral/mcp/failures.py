"""Every refusal and failure of a tool as a tool result flagged ``isError``.

The SDK hides the message of an ordinary exception ("Error executing tool"),
so domain errors and argument validation errors are turned into its
``ToolError`` here, with a text that says what is wrong and nothing more (no
stack trace, no internal names).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from corral import errors

LABELS: list[tuple[type[errors.CorralError], str]] = [
    (errors.NotFound, "not found"),
    (errors.TooLarge, "too large"),
    (errors.InvalidInput, "invalid argument"),
    (errors.Conflict, "conflict"),
    (errors.Unauthenticated, "not authenticated"),
    (errors.Forbidden, "forbidden"),
    (errors.RateLimited, "rate limited"),
    (errors.Unavailable, "unavailable"),
    (errors.CorralError, "refused"),
]


def describe(exc: errors.CorralError) -> str:
    label = next(text for kind, text in LABELS if isinstance(exc, kind))
    field = exc.context.get("field")
    where = f" ({field})" if field and str(field) not in exc.message else ""
    text = f"{label}: {exc.message}{where}"
    if exc.retry_after is not None:
        text += f"; retry after {exc.retry_after} s"
    return text


def describe_validation(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
    ]
    return "invalid argument: " + "; ".join(problems)


# The SDK checks a call's arguments against the tool's schema before the tool runs, and
# answers a mismatch with pydantic's own text (internal model names, a URL per problem).
_SDK_CHECK = re.compile(r"\d+ validation errors? for \S+\n")
_PROBLEM = re.compile(r"^(?P<loc>\S[^\n]*)\n  (?P<msg>[^\n]+?)(?: \[type=[^\n]*\])?$", re.M)


def tidy(text: str) -> str:
    """The SDK's argument-check text as ``invalid argument: <name>: <problem>; ...``."""
    found = _SDK_CHECK.search(text)
    if found is None:
        return text
    problems = [f"{m['loc']}: {m['msg']}" for m in _PROBLEM.finditer(text[found.end() :])]
    if not problems:
        return text
    return text[: found.start()] + "invalid argument: " + "; ".join(problems)


def tidy_result(result: Any) -> Any:
    """A serialized ``tools/call`` error result with its text tidied (see ``tidy``)."""
    if isinstance(result, dict) and (result.get("isError") or result.get("is_error")):
        for block in result.get("content") or []:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                block["text"] = tidy(block["text"])
    return result


@contextmanager
def tool_errors() -> Iterator[None]:
    try:
        yield
    except errors.CorralError as exc:
        raise ToolError(describe(exc)) from None
    except ValidationError as exc:
        raise ToolError(describe_validation(exc)) from None
