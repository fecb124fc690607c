"""The `corral` command starts without importing what only some commands need.

Every command module imports its heavy dependencies (the SDK's httpx and Pydantic
models, the server, the stores, the worker's agent, pydantic-settings, asyncio)
inside the function that needs them (src/corral/cli/main.py says why). One
module-level import in any command module brings its cost back to every start of
every command; these tests catch that without timing anything, by running the
real command in a fresh interpreter and reading what it had imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import clean_env

# Runs `corral ARGS...` in this interpreter as the console script does, then writes
# the names of the modules it imported to the file named by the first argument.
WRAPPER = """
import json, runpy, sys
out, sys.argv = sys.argv[1], ["corral", *sys.argv[2:]]
try:
    runpy.run_module("corral.cli.main", run_name="__main__")
finally:
    with open(out, "w") as file:
        json.dump(sorted(sys.modules), file)
"""
# Never needed to start, to print help or to refuse a command line. (Pydantic is not
# here: typer itself coerces a sub-command's parameters with it.)
HEAVY = (
    "asyncio",
    "asyncpg",
    "fastapi",
    "httpx",
    "pydantic_settings",
    "starlette",
    "uvicorn",
    "corral.api",
    "corral.client.aio",
    "corral.client.client",
    "corral.client.models",
    "corral.failover",
    "corral.mcp",
    "corral.services",
    "corral.settings",
    "corral.store",
)
# Of the worker's package, only the level names `corral worker --help` shows.
AGENT_ALLOWED = {"corral.agent", "corral.agent.levels"}


def imported_by(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    listing = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(listing), *args],
        env=clean_env(COLUMNS="100"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, set(json.loads(listing.read_text()))


def heavy_in(modules: set[str]) -> list[str]:
    """The modules of ``HEAVY`` (or their submodules) and of the agent that were loaded."""
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    agent = [m for m in modules if m.startswith("corral.agent") and m not in AGENT_ALLOWED]
    return sorted(heavy + agent)


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--version",), "corral "),
        (("--help",), "Usage: corral"),
        (("jobs", "--help"), "Usage: corral jobs"),
        (("submit", "--help"), "Usage: corral submit"),
        (("worker", "--help"), "Usage: corral worker"),
        (("server", "--help"), "Usage: corral server"),
        (("user", "list", "--help"), "Usage: corral user list"),
    ],
)
def test_starting_and_help_import_no_command_dependencies(
    tmp_path: Path, args: tuple[str, ...], shown: str
) -> None:
    done, modules = imported_by(tmp_path, *args)
    assert done.returncode == 0, done.stderr
    assert shown in done.stdout
    assert "corral.cli.worker_cmd" in modules  # every command was registered
    assert heavy_in(modules) == []


def test_a_refused_command_line_imports_no_command_dependencies(tmp_path: Path) -> None:
    """Click refuses a bad option before any command function runs: nothing heavy."""
    done, modules = imported_by(tmp_path, "jobs", "--limit", "0")
    assert done.returncode == 2
    assert "--limit" in done.stderr
    assert heavy_in(modules) == []


def test_the_check_sees_what_a_command_imports_when_it_runs(tmp_path: Path) -> None:
    """The same wrapper around a command that reaches a dispatcher (none listens on
    port 9) lists the SDK: the absence above is not an artefact of the wrapper."""
    done, modules = imported_by(tmp_path, "jobs", "--server", "http://127.0.0.1:9", "--token", "t")
    assert done.returncode == 1
    assert done.stderr.startswith("error: ")
    assert {"httpx", "corral.client.client", "corral.failover"} <= modules
    assert "corral.client.models" not in modules  # JsonClient answers dicts


def test_the_sdk_package_loads_its_names_on_first_use() -> None:
    script = """
import sys
import corral.client as sdk
before = {m for m in ("httpx", "pydantic") if m in sys.modules}
from corral.client import CorralClient, EndEvent, Job, JsonClient
print(sorted(before), CorralClient.__module__, Job.__module__, EndEvent.__module__)
print(all(getattr(sdk, name) is not None for name in sdk.__all__))
print(set(sdk.__all__) <= set(dir(sdk)))
try:
    sdk.Missing
except AttributeError as exc:
    print(exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == [
        "[] corral.client.sync corral.client.models corral.client.events",
        "True",
        "True",
        "module 'corral.client' has no attribute 'Missing'",
    ]
