"""The ranges request numbers are held to, shared by every dialect's schemas.

Every integer or number a request carries has both bounds in the OpenAPI
document (``Field(ge=..., le=...)``, ``Query(...)``), so a client (or a fuzzer)
reading it knows what is accepted, and anything else is a 4xx in the dialect's
shape instead of a value the store or the JSON renderer cannot hold. The
bounds fit the narrowest column that stores each value (PostgreSQL ``int4``
for attempts and exit codes, ``int8`` elsewhere).
"""

from __future__ import annotations

from corral.domain.jobs import MAX_RETRIES_LIMIT

INT32_MAX = (1 << 31) - 1
ATTEMPT = INT32_MAX  # attempts grow with retries and releases; stored as int4
EXIT_CODE = INT32_MAX  # exit codes: -2**31 .. 2**31-1 (negative for signals), stored as int4
COUNT = 1 << 62  # counters and offsets: far beyond any table, well inside int8
MEMORY_MB = 1 << 40  # an exbibyte, in MiB
CPUS = 1 << 16
RETRIES = MAX_RETRIES_LIMIT
LEASE_MINUTES = 1440.0  # a day, TaskDriver's longest lease and reaper interval
PAGE = 1000  # rows per page where a larger limit is refused
