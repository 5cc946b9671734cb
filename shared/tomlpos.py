"""Find the line of a key or table in TOML text, so errors can say "line 12".

``tomllib`` returns plain dicts with no positions. Errors about a value that
parsed fine (a bad cron, an unknown key) are far more useful with a line
number, so this module scans the text line by line for table headers and
``key =`` lines. It is a locator for messages, not a parser: if it cannot tell,
it returns ``None`` and the message simply has no line.
"""

from __future__ import annotations

import re

__all__ = ["TomlIndex", "locate"]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[\[?(?P<path>[^\[\]]*)\]\]?\s*(?:#.*)?$")


def _split_dotted(text: str) -> tuple[str, ...] | None:
    """``a."b.c".d`` -> ("a", "b.c", "d"); None if it is not a dotted key."""
    parts: list[str] = []
    rest = text.strip()
    while True:
        rest = rest.lstrip()
        if rest[:1] in ('"', "'"):
            quote = rest[0]
            end = rest.find(quote, 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :]
        else:
            match = _BARE.match(rest)
            if match is None:
                return None
            parts.append(match.group())
            rest = rest[match.end() :]
        rest = rest.lstrip()
        if not rest:
            return tuple(parts)
        if rest[0] != ".":
            return None
        rest = rest[1:]


def _index(text: str) -> dict[tuple[str, ...], int]:
    """Every table header and key path in ``text`` -> its first line (1-based)."""
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None:
            path = _split_dotted(header.group("path"))
            if path is not None:
                table = path
                for end in range(1, len(path) + 1):
                    # [a.b] also defines a, implicitly, on this line.
                    found.setdefault(path[:end], lineno)
            continue
        key, sep, _ = line.partition("=")
        if not sep:
            continue
        dotted = _split_dotted(key)
        if dotted is not None:
            for end in range(1, len(dotted) + 1):
                found.setdefault(table + dotted[:end], lineno)
    return found


class TomlIndex:
    """The lines of every key and table of one text; build once, ask many times (linear)."""

    def __init__(self, text: str) -> None:
        self._found: dict[tuple[str, ...], int] | None = None
        self._text = text

    def locate(self, path: tuple[str, ...]) -> int | None:
        """The line of ``path`` (a key or table), else of its nearest enclosing table, else None."""
        if self._found is None:
            self._found = _index(self._text)  # lazily: files without errors never need it
        for end in range(len(path), 0, -1):
            lineno = self._found.get(path[:end])
            if lineno is not None:
                return lineno
        return None


def locate(text: str, path: tuple[str, ...]) -> int | None:
    """One-off ``TomlIndex(text).locate(path)``; build a ``TomlIndex`` to ask several times."""
    return TomlIndex(text).locate(path)
