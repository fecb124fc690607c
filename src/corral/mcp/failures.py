"""Every refusal and failure of a tool as a tool result flagged ``isError``.

The SDK hides the message of an ordinary exception ("Error executing tool"),
so domain errors and argument validation errors are turned into its
``ToolError`` here, with a text that says what is wrong and nothing more (no
stack trace, no internal names).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
    if isinstance(exc, errors.RateLimited):
        text += f"; retry after {exc.retry_after} s"
    return text


def describe_validation(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
    ]
    return "invalid argument: " + "; ".join(problems)


@contextmanager
def tool_errors() -> Iterator[None]:
    try:
        yield
    except errors.CorralError as exc:
        raise ToolError(describe(exc)) from None
    except ValidationError as exc:
        raise ToolError(describe_validation(exc)) from None
