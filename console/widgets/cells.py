"""Small pure renderers shared by the views: status words, durations, times, sparklines.

Status is always a word as well as a colour (CONSOLE.md: never colour alone),
so NO_COLOR and monochrome terminals lose nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from rich.style import Style
from rich.text import Text

from shared.textsafe import inert

__all__ = [
    "STATUS_STYLES",
    "ago",
    "clock_time",
    "duration",
    "fit",
    "percent",
    "sparkline",
    "status_text",
]

STATUS_STYLES: dict[str, Style] = {
    "success": Style(color="green"),
    "failed": Style(color="red", bold=True),
    "timeout": Style(color="red"),
    "lost": Style(color="magenta", bold=True),
    "cancelled": Style(color="yellow"),
    "running": Style(color="cyan", bold=True),
    "queued": Style(color="blue"),
    "pending": Style(dim=True),
    "awaiting_approval": Style(color="yellow", bold=True),
    "skipped": Style(dim=True),
}

# Short words that fit a narrow column; the full word is in the detail views.
STATUS_WORDS = {"awaiting_approval": "approval", "cancelled": "cancelled"}

_BARS = "▁▂▃▄▅▆▇█"


def status_text(status: str) -> Text:
    """The status as a coloured word."""
    return Text(STATUS_WORDS.get(status, status or "-"), style=STATUS_STYLES.get(status, Style()))


def duration(ms: int | float | None) -> str:
    """``1.2s``, ``3m05s``, ``2h10m``; ``-`` when unknown."""
    if ms is None:
        return "-"
    s = ms / 1000
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def ago(ts: float | None, now: float) -> str:
    """How long before ``now`` (``5s ago``), or ahead of it (``in 3m``)."""
    if ts is None:
        return "never"
    delta = now - ts
    word = "ago" if delta >= 0 else ""
    delta = abs(delta)
    if delta < 60:
        text = f"{delta:.0f}s"
    elif delta < 3600:
        text = f"{delta // 60:.0f}m"
    elif delta < 86400 * 2:
        text = f"{delta // 3600:.0f}h{delta % 3600 // 60:02.0f}m"
    else:
        text = f"{delta // 86400:.0f}d"
    return f"{text} ago" if word else f"in {text}"


def clock_time(ts: float | None, tz: tzinfo, *, with_date: bool = True) -> str:
    if ts is None:
        return "-"
    when = datetime.fromtimestamp(ts, tz)
    return when.strftime("%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def sparkline(values: Sequence[float], width: int = 10) -> str:
    """The last ``width`` values as bars scaled between their min and max."""
    values = list(values)[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_BARS[min(7, int((v - low) / span * 7.999))] for v in values)


def fit(text: str, width: int) -> str:
    """Hostile text made inert, on one line, cut to ``width`` cells with an ellipsis."""
    text = inert(text).replace("\n", " ").replace("\t", " ")
    if len(text) <= width:
        return text.ljust(width)
    return text[: max(0, width - 1)] + "…"
