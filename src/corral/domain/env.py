"""The rules a job's environment must follow, for every dialect and both env maps.

A job's environment is data for the program it runs, never a way to change
*which* code runs. That matters most for ``binary_url`` jobs, whose sha256 pins
exactly what executes: a variable that makes the dynamic loader, the shell or a
language runtime load other code would quietly undo that pin, so such names are
refused at submission (400), before anything is stored.

Refused names (compared case-insensitively, so no spelling slips through on a
platform that folds case) and why:

- ``LD_*`` (``LD_PRELOAD``, ``LD_LIBRARY_PATH``, ``LD_AUDIT``...), ``DYLD_*``:
  the dynamic loader reads them before ``main`` of every program, ``/bin/sh``
  included, and loads the libraries they name.
- ``GLIBC_TUNABLES``: parsed by the loader itself (CVE-2023-4911);
  ``GCONV_PATH``: makes glibc load iconv modules (shared objects) from a path.
- ``BASH_ENV``, ``ENV``: a file the shell sources before the job's command;
  ``BASH_FUNC_*``: exported bash functions that shadow any command by name;
  ``SHELLOPTS``, ``BASHOPTS``: shell options (``xtrace`` with ``PS4`` runs
  command substitutions); ``PS4``: evaluated on every traced line;
  ``IFS``: re-splits every unquoted expansion of a script;
  ``PROMPT_COMMAND``: run before each prompt.
- ``PERL5OPT``, ``RUBYOPT``, ``NODE_OPTIONS``, ``JAVA_TOOL_OPTIONS``,
  ``_JAVA_OPTIONS``, ``JDK_JAVA_OPTIONS``: command-line options smuggled into
  an interpreter (``-M``, ``-r``, ``--require``, ``-javaagent``) that load code
  the job never named.

Allowed on purpose: search paths a job legitimately sets (``PATH``,
``PYTHONPATH``, ``PERL5LIB``, ``RUBYLIB``, ``NODE_PATH``, ``CLASSPATH``,
``HOME``, ``LANG``...). They only choose among files already on the worker or
in the job's own directory, which a shell job can run anyway; refusing them
would break ordinary jobs for no real gain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from corral.errors import InvalidInput

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 256
MAX_ENTRIES = 128  # env and secret_env together
MAX_VALUE_BYTES = 32 * 1024
# Linux caps one argv/env string at 128 KiB and all of them at about 2 MiB; a job's
# environment stays well inside that, leaving room for its arguments.
MAX_TOTAL_BYTES = 256 * 1024
MASK = "********"  # what every read path shows instead of a secret value

DANGEROUS_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_")
DANGEROUS_NAMES = frozenset(
    {
        "GLIBC_TUNABLES",
        "GCONV_PATH",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "IFS",
        "PROMPT_COMMAND",
        "PERL5OPT",
        "RUBYOPT",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
    }
)


def valid_name(name: str) -> bool:
    """POSIX portable name syntax: what every shell can export and read back."""
    return len(name) <= MAX_NAME_LENGTH and NAME.match(name) is not None


def dangerous(name: str) -> bool:
    """Whether ``name`` would let the job's env change which code runs (see above)."""
    upper = name.upper()
    return upper in DANGEROUS_NAMES or upper.startswith(DANGEROUS_PREFIXES)


def validate_env(env: Mapping[str, str], secret_env: Mapping[str, str] | None = None) -> None:
    """Check both maps of one job; messages name variables, never their values."""
    secret_env = secret_env or {}
    if len(env) + len(secret_env) > MAX_ENTRIES:
        raise InvalidInput(f"at most {MAX_ENTRIES} environment variables per job", field="env")
    shared = sorted(set(env) & set(secret_env))
    if shared:
        raise InvalidInput(
            f"environment variable {shared[0]} is in both env and secret_env", field="env"
        )
    total = 0
    for name, value in (*env.items(), *secret_env.items()):
        total += _check_entry(name, value)
    if total > MAX_TOTAL_BYTES:
        raise InvalidInput(f"the job's environment exceeds {MAX_TOTAL_BYTES} bytes", field="env")


def _check_entry(name: str, value: str) -> int:
    """Refuse one bad entry; return its size as ``execve`` will count it."""
    if "=" in name:  # most likely NAME=VALUE in the name slot: never echo the value
        raise InvalidInput("environment variable names may not contain '='", field="env")
    if not valid_name(name):
        raise InvalidInput(
            f"invalid environment variable name: {name[:MAX_NAME_LENGTH]!r} "
            f"(letters, digits and _, not starting with a digit, at most {MAX_NAME_LENGTH})",
            field="env",
        )
    if dangerous(name):
        raise InvalidInput(
            f"environment variable {name} is refused: it can make the loader, shell "
            "or runtime run code the job did not name",
            field="env",
        )
    if "\x00" in value:
        raise InvalidInput(f"environment variable {name} contains a NUL byte", field="env")
    size = len(value.encode(errors="surrogatepass"))
    if size > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"environment variable {name} is longer than {MAX_VALUE_BYTES} bytes", field="env"
        )
    return len(name) + 2 + size  # NAME=VALUE\0


def masked(secret_env: Mapping[str, str]) -> dict[str, str]:
    """The names of a job's secrets with their values hidden, for every reader."""
    return dict.fromkeys(secret_env, MASK)
