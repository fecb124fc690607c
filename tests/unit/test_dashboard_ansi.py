"""ANSI escapes in job output become classes the dashboard styles; nothing else survives."""

from __future__ import annotations

from corral.api.dashboard.ansi import segments


def test_item3_sgr_colours_and_flags_become_classes() -> None:
    text = "\x1b[31mred\x1b[1m bold red\x1b[22;39m plain\x1b[44;97m on blue\x1b[0m end"
    assert segments(text) == [
        ("ansi-fg-1", "red"),
        ("ansi-bold ansi-fg-1", " bold red"),
        ("", " plain"),
        ("ansi-fg-15 ansi-bg-4", " on blue"),
        ("", " end"),
    ]


def test_item3_256_colour_and_rgb_codes_are_skipped_with_their_arguments() -> None:
    assert segments("\x1b[38;5;196;1mx\x1b[38;2;1;2;3;4my") == [
        ("ansi-bold", "x"),
        ("ansi-bold ansi-underline", "y"),
    ]


def test_item3_other_escapes_are_dropped_and_text_kept() -> None:
    text = "a\x1b[2Kb\x1b[3;1Hc\x1b]0;window title\x07d\x1b]8;;http://x\x1b\\e\x1bMf\r\n"
    assert "".join(t for _, t in segments(text)) == "abcdef\r\n"
    assert all(cls == "" for cls, _ in segments(text))


def test_item3_text_without_escapes_is_one_plain_segment() -> None:
    assert segments("<b>not html</b>\n") == [("", "<b>not html</b>\n")]
    assert segments("") == []
