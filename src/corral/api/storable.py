"""One check every dialect's request bodies share: a value the store cannot keep is bad input.

Integers past 64 bits and strings with lone surrogates parse as JSON, but
SQLite, PostgreSQL and the JSON renderer all refuse them; without this check
they surfaced as 500s (issue 11, item 23). Models call ``storable`` from an
``after`` validator, so the refusal is a validation error in the dialect's shape.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from corral.domain.bounds import unstorable

M = TypeVar("M", bound=BaseModel)


def storable(model: M) -> M:
    """``model`` unchanged, or ``ValueError`` naming the first field the store cannot hold.

    Nested models check themselves; extra fields a model allows are checked too.
    """
    for name, value in model:
        if isinstance(value, BaseModel):
            continue
        problem = unstorable(value, name)
        if problem:
            raise ValueError(problem)
    return model
