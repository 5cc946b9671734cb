"""Make hostile text inert before it is shown on a terminal.

Job output, job names from a remote agent and anything else an operator did
not type is hostile (DESIGN.md): it may carry escape sequences that move the
cursor, retitle the window, write the clipboard (OSC 52), hide text, or
reorder it with bidi overrides. ``inert(text)`` removes every terminal control
sequence and control character except newline and tab, and replaces the
invisible reordering characters with a visible marker, so what is rendered is
exactly the printable text. It never raises and keeps memory linear.

Call it on every piece of untrusted text just before display; it is pure and
cheap (one regex pass). The result still must not go through Rich markup:
render it with ``rich.text.Text`` / ``markup=False``.
"""

from __future__ import annotations

import re

__all__ = ["REPLACEMENT", "inert", "inert_bytes"]

# Shown in place of an invisible reordering or formatting character, so the
# operator sees that something was there (Trojan-source style text).
REPLACEMENT = "\N{REPLACEMENT CHARACTER}"

# One alternation, longest forms first: a whole escape sequence goes at once so
# that its parameters never leak as printable text.
_SEQUENCES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?            # CSI (ESC [ ... final); unterminated at end too
    | \x9b[0-?]*[ -/]*[@-~]?            # 8-bit CSI
    | \x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c|$)   # OSC / DCS / SOS / PM / APC up to BEL or ST
    | [\x90\x98\x9d\x9e\x9f].*?(?:\x07|\x1b\\|\x9c|$)  # their 8-bit introducers
    | \x1b[ -/]*[0-~]?                  # other ESC sequences (charset, keypad, RIS ...)
    | \x1b                              # a lone ESC
    """,
    re.VERBOSE | re.DOTALL,
)

# C0 controls except TAB (09) and LF (0A); DEL; C1 controls. CR is dropped too:
# a bare CR lets later text overwrite earlier text on the same line.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Bidi embeddings/overrides/isolates, zero-width and other invisible format
# characters that can make displayed text differ from what runs.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\ufff9-\ufffb]")


def inert(text: str) -> str:
    """``text`` with terminal control sequences and control characters removed.

    Newlines and tabs are kept; ``\\r\\n`` becomes ``\\n``; invisible
    reordering characters become ``REPLACEMENT``.
    """
    if text.isprintable():
        return text  # the common case: nothing to strip, no copy
    text = text.replace("\r\n", "\n")
    text = _SEQUENCES.sub("", text)
    text = _CONTROLS.sub("", text)
    return _INVISIBLE.sub(REPLACEMENT, text)


def inert_bytes(data: bytes) -> str:
    """Decode raw output (UTF-8, invalid bytes replaced) and make it inert."""
    return inert(data.decode("utf-8", errors="replace"))
