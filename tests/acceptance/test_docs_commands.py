"""Every command README.md and docs/ show works: runnable shell blocks run against a real
``corral server`` and ``corral worker``, and every ``corral`` command anywhere in the docs
names real commands and options. How to mark a block that cannot run: tests/docs_blocks.py.

The blocks run in a scratch directory laid out like a checkout after ``make run``:
``.venv/bin/corral`` (this tree's CLI), ``corral-data/`` (the server's data dir, with its
``admin-token``), ``CORRAL_URL``/``CORRAL_TOKEN`` set, a ``HOME`` of its own (``corral
login`` saves there), and ``http://127.0.0.1:3000`` in a block meaning this server.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from corral.cli.main import app
from tests.docs_blocks import REPO, Block, blocks, commands_in, doc_files, inline_commands
from tests.processes import (
    HOST_VISIBLE,
    clean_env,
    server_process,
    start_worker,
    stop_all,
    worker_token,
)

ALL_BLOCKS = [block for path in doc_files() for block in blocks(path)]
RUNNABLE = [block for block in ALL_BLOCKS if block.runs]
DOCS_URL = "http://127.0.0.1:3000"


# ---- every corral command shown names real commands and options ---------------------------


@functools.cache
def cli_tree() -> Any:
    """The CLI's click command tree (typer's own vendored classes): built once, as
    building it is most of what checking one command costs."""
    return typer.main.get_command(app)


def problems_of(words: list[str]) -> list[str]:
    """What is wrong with ``corral WORDS...``: an unknown command or an unknown option."""
    command: Any = cli_tree()
    # Sub-commands inherit the root's context settings: -h is help everywhere.
    help_names = set(command.context_settings.get("help_option_names", ["--help"]))
    rest = list(words)
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        names = rest.pop(0).split("|")  # "drain|remove": each must exist
        found = [command.commands.get(name) for name in names]
        if not all(found):
            return [f"no command {' '.join(words)!r} (known: {sorted(command.commands)})"]
        command = found[0]
    options = {
        opt for param in command.params for opt in (*param.opts, *param.secondary_opts)
    } | help_names
    return [
        f"{' '.join(words)!r}: {word.split('=')[0]} is not an option of {command.name}"
        for word in rest
        if word.startswith("-") and word != "-" and word.split("=")[0] not in options
    ]


def shown_commands() -> Iterator[tuple[str, list[str]]]:
    for path in doc_files():
        for block in blocks(path):
            if block.lang != "json":
                for words in commands_in(block.text):
                    yield block.where, words
        for words in inline_commands(path):
            yield str(path.name), words


def test_item1_every_corral_command_in_the_docs_has_its_options() -> None:
    shown = list(shown_commands())
    assert len(shown) > 20, "the extraction found almost no commands: is it broken?"
    wrong = [f"{where}: {p}" for where, words in shown for p in problems_of(words)]
    assert wrong == [], "\n".join(wrong)


def test_item1_the_option_check_sees_a_wrong_command_or_option() -> None:
    text = "x=$(corral token create --role worker --frobnicate) && corral nosuch -v\n"
    found = [p for words in commands_in(text) for p in problems_of(words)]
    assert len(found) == 2 and "--frobnicate" in found[0] and "nosuch" in found[1], found
    assert problems_of(["server", "--port", "3000", "--data-dir=x"]) == []


def test_item1_a_console_block_runs_only_its_prompt_lines() -> None:
    block = Block(
        REPO / "README.md", 1, "console", "$ corral jobs\nID  STATUS\n$ echo hi\nhi\n", None
    )
    assert block.runs and block.script == "corral jobs\necho hi\n"
    assert list(commands_in(block.text)) == [["jobs"]]


def test_item1_a_block_that_cannot_run_says_why() -> None:
    unexplained = [b.where for b in ALL_BLOCKS if b.skip == ""]
    assert unexplained == [], "<!-- doc-test: skip --> needs a reason, at " + str(unexplained)
    assert len(RUNNABLE) >= 3, "almost no block runs: is the extraction broken?"


# ---- runnable blocks run against a real server and worker ----------------------------------


@dataclass
class Site:
    root: Path
    url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("docs-site")
    bindir = root / ".venv" / "bin"
    bindir.mkdir(parents=True)
    wrapper = bindir / "corral"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m corral.cli.main "$@"\n')
    wrapper.chmod(0o755)
    (root / "home").mkdir()
    data = root / "corral-data"
    env = clean_env(CORRAL_LOGIN_RATE_LIMIT="off")
    with server_process(data, root / "server.log", env=env) as (url, _):
        admin = (data / "admin-token").read_text().strip()
        worker = start_worker(url, worker_token(data), root, "docs", "worker.log", *HOST_VISIBLE)
        try:
            path = f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
            block_env = clean_env(
                PATH=path, HOME=str(root / "home"), CORRAL_URL=url, CORRAL_TOKEN=admin
            )
            yield Site(root, url, block_env)
        finally:
            stop_all([worker], 15)


@pytest.mark.slow  # each block starts the CLI a few times: seconds apiece on a busy machine
@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.where)
def test_item1_runnable_doc_block_runs(site: Site, block: Block) -> None:
    script = block.script.replace(DOCS_URL, site.url)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=site.root,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, (
        f"{block.where} exited {done.returncode}\n--- block\n{script}"
        f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
    )
