"""The commands that README.md and docs/*.md show, as the docs tests read them.

- A fenced block tagged ``bash``, ``sh``, ``shell`` or ``console`` is a *runnable* block:
  ``tests/acceptance/test_docs_commands.py`` runs it against a real server and worker
  (of a ``console`` block, only the lines starting with ``$ ``: the rest is output).
- A block that cannot run (it needs a second machine, root on the host, a placeholder
  such as ``ID``, or runs for ever) says so on the line above its fence (blank lines
  between are allowed)::

      <!-- doc-test: skip needs a second machine -->

  The reason is required. Such a block is still read for ``corral`` commands.
- Every ``corral`` command, in any block (runnable, skipped or untagged) and in inline
  code (`` `corral jobs --status failed` ``), must name commands the CLI has and options
  those commands accept. Square brackets (a synopsis's optional parts) are ignored.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUNNABLE = frozenset({"bash", "sh", "shell", "console"})
SKIP = re.compile(r"<!--\s*doc-test:\s*skip\b\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
OPERATORS = frozenset({"&&", "||", "|", ";", "&", ")", "$("})


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text, and why it may not run."""

    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    skip: str | None  # the reason given, "" for a marker without one, None when unmarked

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def script(self) -> str:
        """What runs: the text, or for a ``console`` block only its ``$ `` lines."""
        if self.lang != "console":
            return self.text
        lines = [line[2:] for line in self.text.splitlines() if line.startswith("$ ")]
        return "\n".join(lines) + "\n"

    @property
    def runs(self) -> bool:
        return self.lang in RUNNABLE and self.skip is None


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("**/*.md"))]


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        fence, lang, start = opened.group(2), opened.group(3).lower(), i
        i += 1
        body: list[str] = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        above = start - 1
        while above >= 0 and not lines[above].strip():  # blank lines between are fine
            above -= 1
        marker = SKIP.search(lines[above]) if above >= 0 else None
        skip = marker.group(1) if marker else None
        yield Block(path, start + 1, lang, "\n".join(body) + "\n", skip)
        i += 1


def prose(path: Path) -> str:
    """The file without its fenced blocks, for inline code."""
    out, inside, fence = [], False, ""
    for line in path.read_text().splitlines():
        opened = FENCE.match(line)
        if not inside and opened:
            inside, fence = True, opened.group(2)
        elif inside and line.strip().startswith(fence):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def commands_in(text: str) -> Iterator[list[str]]:
    """Each ``corral`` invocation in shell text, as its words after ``corral``."""
    joined = re.sub(r"\\\n", " ", text)
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if "corral" not in line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line.replace("$(", " $( ").replace(")", " ) "), comments=True)
        except ValueError:
            words = line.split()
        yield from _invocations(words)


def _invocations(words: list[str]) -> Iterator[list[str]]:
    for at, word in enumerate(words):
        if word == "corral" or word.endswith("bin/corral"):  # not /var/lib/corral
            rest: list[str] = []
            for nxt in words[at + 1 :]:
                if nxt in OPERATORS or nxt == "--":
                    break
                rest.append(nxt.strip("[]"))
            yield [w for w in rest if w and w not in ("...", "…")]


def inline_commands(path: Path) -> Iterator[list[str]]:
    for span in INLINE.findall(prose(path)):
        words = span.split()
        if words and (words[0] == "corral" or words[0].endswith("bin/corral")):
            yield from commands_in(span)
