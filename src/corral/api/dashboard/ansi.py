"""ANSI colours in job output, as spans the page can style under its CSP.

A job's output often carries SGR escapes (``ESC [ 31 m``: red) from tools that colour
their output. The page must neither show them as garbage nor trust them: the text is
cut into segments, each with the CSS classes of the colours and weights in force, and
the template escapes each segment as usual. Classes, not ``style=`` attributes, since
the dashboard's CSP refuses inline styles. Every other escape (cursor moves, erasing,
OSC titles and links) is dropped. ``static/app.js`` does the same to output that
arrives live, so a page renders the same whether loaded or followed.
"""

from __future__ import annotations

import re

# CSI ... final byte, OSC ... BEL/ST, or a lone two-byte escape.
ESCAPE = re.compile(r"\x1b(?:\[([0-?]*)[ -/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
BASIC = {**{30 + n: n for n in range(8)}, **{90 + n: 8 + n for n in range(8)}}
FLAGS = {1: "ansi-bold", 2: "ansi-dim", 3: "ansi-italic", 4: "ansi-underline"}
RESETS = {22: ("ansi-bold", "ansi-dim"), 23: ("ansi-italic",), 24: ("ansi-underline",)}

Segment = tuple[str, str]  # (space-separated classes, text)


class Style:
    """The SGR state: a foreground, a background (0-15, or None) and flags."""

    def __init__(self) -> None:
        self.fg: int | None = None
        self.bg: int | None = None
        self.flags: set[str] = set()

    def classes(self) -> str:
        names = sorted(self.flags)
        if self.fg is not None:
            names.append(f"ansi-fg-{self.fg}")
        if self.bg is not None:
            names.append(f"ansi-bg-{self.bg}")
        return " ".join(names)

    def apply(self, params: str) -> None:
        codes = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else [0]
        i = 0
        while i < len(codes):
            i = self._one(codes, i)

    def _one(self, codes: list[int], i: int) -> int:
        """Apply the code at ``i``; return the index of the next one."""
        code = codes[i]
        if code == 0:
            self.fg, self.bg, self.flags = None, None, set()
        elif code in FLAGS:
            self.flags.add(FLAGS[code])
        elif code in RESETS:
            self.flags.difference_update(RESETS[code])
        elif code in BASIC:
            self.fg = BASIC[code]
        elif code - 10 in BASIC:
            self.bg = BASIC[code - 10]
        elif code == 39:
            self.fg = None
        elif code == 49:
            self.bg = None
        elif code in (38, 48):  # 256-colour or RGB: skipped, the text keeps its default
            return i + (3 if codes[i + 1 : i + 2] == [5] else 5)
        return i + 1


def segments(text: str) -> list[Segment]:
    """``text`` cut at its escapes, each piece with the classes in force; escapes gone."""
    style, out, at = Style(), [], 0
    for match in ESCAPE.finditer(text):
        if match.start() > at:
            out.append((style.classes(), text[at : match.start()]))
        if match.group(2) == "m":
            style.apply(match.group(1) or "")
        at = match.end()
    if at < len(text):
        out.append((style.classes(), text[at:]))
    return out
