"""The names of the isolation levels and the default uid range, alone.

``corral worker --help`` shows them, and every `corral` command builds that help
text when it starts: here they cost one small module, where ``isolation.py``
would bring the sandbox and its helpers into each start (docs/isolation.md says
what each level does).
"""

from __future__ import annotations

import enum

DEFAULT_UID_RANGE = "200000-265535"


class Level(enum.StrEnum):
    SANDBOX = "sandbox"
    USER = "user"
    NONE = "none"


AUTO = "auto"
CHOICES = (AUTO, *(level.value for level in Level))
