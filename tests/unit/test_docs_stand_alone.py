"""The docs stand alone: a reader with only README.md and docs/ learns what Corral and its
four APIs are, and no page sends them to a document, note or issue they do not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_blocks import REPO, doc_files

# What a reader of this repository does not have: the original API files, this project's
# issue tracker and its working notes. "document" alone means the original API files; the
# OpenAPI document is the server's own and is fine.
ELSEWHERE = [
    (r"\bshared/|\bseeds/|seed_clients|\bseed (?:file|document)s?\b", "the original API files"),
    (r"\bissues? \d+|\(issue\b|\bitem \d+\b|closing notes", "the project's issues or notes"),
    (r"(?<!OpenAPI )\bdocument(?:'s|s'?)?\b(?! silent)|\bas documented\b", "a document"),
]
CONCEPTS = ("job", "attempt", "lease", "worker", "label", "project", "priority", "retry")
APIS = ("CMD Executor", "Octaskly", "TaskDriver", "executor queue")


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: p.name)
def test_item1_no_page_refers_to_what_the_reader_lacks(path: Path) -> None:
    text = path.read_text()
    found = [
        f"line {text[: m.start()].count(chr(10)) + 1}: {m.group(0)!r} ({what})"
        for pattern, what in ELSEWHERE
        for m in re.finditer(pattern, text, re.IGNORECASE)
    ]
    assert found == [], "\n".join(found)


def test_item1_index_and_concepts_come_first_and_explain_the_apis() -> None:
    index = (REPO / "docs" / "index.md").read_text()
    concepts = (REPO / "docs" / "concepts.md").read_text().lower()
    for api in APIS:
        assert api.lower() in index.lower(), f"docs/index.md never explains {api}"
    assert "use it when" in index.lower(), "index.md must say which API to use for what"
    for word in CONCEPTS:
        assert f"**{word}" in concepts, f"docs/concepts.md has no entry for {word!r}"
    readme = (REPO / "README.md").read_text()
    first_screens = readme[: readme.index("## What is here")]
    for needed in ("make run", "make test", "docs/index.md", "docs/concepts.md", *APIS[:3]):
        assert needed in first_screens, f"README's first screens lack {needed!r}"
    assert readme.index("make test") < 2500, "`make test` must stay on the first screen"
