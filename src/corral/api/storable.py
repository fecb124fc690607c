"""One check every dialect's request bodies share: a value the store cannot keep is bad input.

Integers past 64 bits and strings with lone surrogates parse as JSON, but
SQLite, PostgreSQL and the JSON renderer all refuse them; without this check
they surfaced as 500s (issue 11, item 23). Models call ``storable`` from an
``after`` validator, so the refusal is a validation error in the dialect's shape.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from corral.domain.bounds import INT64_MAX, INT64_MIN, unstorable

M = TypeVar("M", bound=BaseModel)


def storable(model: M) -> M:
    """``model`` unchanged, or ``ValueError`` naming the first field the store cannot hold.

    Nested models check themselves; extra fields a model allows are checked too. It
    runs on every body of every request (a bulk submit: on each of its jobs), so it
    reads the fields straight from the model's ``__dict__`` (what iterating the model
    yields, without its generator) and steps over, without a call, the values that can
    never be a problem: None, booleans, floats, ASCII text, 64-bit integers, empty
    lists and dicts.
    """
    fields = model.__dict__.items()
    extra = model.__pydantic_extra__
    for name, value in (*fields, *extra.items()) if extra else fields:
        kind = type(value)
        if kind in _ALWAYS_FINE:
            continue
        if kind is str:
            if value.isascii():
                continue
        elif kind is int:
            if INT64_MIN <= value <= INT64_MAX:
                continue
        elif kind in _CONTAINERS:
            if not value:
                continue
        elif isinstance(value, BaseModel):
            continue
        problem = unstorable(value, name)
        if problem:
            raise ValueError(problem)
    return model


_ALWAYS_FINE = frozenset({type(None), bool, float})
_CONTAINERS = frozenset({list, dict})
