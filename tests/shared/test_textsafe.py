"""inert(): hostile job output becomes plain printable text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.textsafe import REPLACEMENT, inert, inert_bytes


def test_plain_text_is_unchanged() -> None:
    """Printable text, newlines and tabs pass through untouched."""
    assert inert("backup ok\n\tdone: 3 files") == "backup ok\n\tdone: 3 files"


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[Hcleared", "cleared"),
        ("\x1b]0;pwned title\x07after", "after"),
        ("\x1b]52;c;ZXZpbA==\x1b\\clip", "clip"),
        ("\x1bP1$qm\x1b\\dcs", "dcs"),
        ("a\x1b[?1049hb", "ab"),
        ("\x9b31mc1", "c1"),
        ("\x1bcreset", "reset"),
        ("bell\x07", "bell"),
        ("null\x00byte", "nullbyte"),
        ("over\rwrite", "overwrite"),
        ("del\x7f", "del"),
        ("tail\x1b[", "tail"),
        ("unterminated\x1b]8;;http://x", "unterminated"),
    ],
)
def test_control_sequences_are_removed(hostile: str, shown: str) -> None:
    """Escape sequences (CSI, OSC incl. clipboard, DCS, 8-bit forms) and controls vanish whole."""
    assert inert(hostile) == shown


def test_crlf_becomes_lf() -> None:
    """Windows line ends keep the line break and lose the carriage return."""
    assert inert("a\r\nb\r\n") == "a\nb\n"


def test_bidi_override_is_made_visible() -> None:
    """A right-to-left override (Trojan source) is replaced by a visible marker."""
    assert inert("rm -rf \u202e/ tsil") == f"rm -rf {REPLACEMENT}/ tsil"


def test_invalid_utf8_bytes_are_replaced() -> None:
    """Bytes that are not UTF-8 decode to replacement characters, never raise."""
    assert inert_bytes(b"ok \xff\xfe \x1b[1mbold") == "ok \ufffd\ufffd bold"


@given(st.text())
def test_result_has_no_controls(text: str) -> None:
    """Whatever comes in, no control character but newline and tab comes out."""
    out = inert(text)
    assert all(ch in "\n\t" or unicodedata.category(ch) != "Cc" for ch in out)
