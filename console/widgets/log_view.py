"""LogView: a job's output, live or stored, as a Line-API view.

Output is hostile: every piece is decoded, made inert (``shared.textsafe``)
and drawn as plain segments, never through markup. Writes are batched: pieces
wait in a buffer and a timer folds them in every 100 ms with one size update
and one refresh (per-line writes were about 40 times slower, CONSOLE.md).

The view shows stdout, stderr or both (stderr in the error colour and marked
``!`` in the gutter, so the difference survives NO_COLOR); ``marker()`` adds a
line such as the cap's "N bytes dropped" between head and tail. ``follow``
keeps the view at the end; while it is off, new lines are counted and
``LogView.NewLines`` tells the screen how many arrived (the "+N new lines"
badge). ``search`` highlights a regex and ``next_match`` moves between hits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.bindings import bindings
from shared.textsafe import inert

__all__ = ["LogLine", "LogView"]

STREAMS = ("combined", "stdout", "stderr")
_MAX_LINE = 10_000  # characters kept per line: a megabyte without newline stays cheap


@dataclass(slots=True)
class LogLine:
    stream: str  # "stdout" | "stderr" | "marker"
    text: str


class LogView(ScrollView, can_focus=True):
    """Lines of one execution's output; attributes ``follow``, ``wrap``, ``stream``."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "log.up",
        "log.down",
        "log.page_up",
        "log.page_down",
        "log.top",
        "log.end",
    )

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-view--stderr",
        "log-view--marker",
        "log-view--match",
    }

    DEFAULT_CSS = """
    LogView { height: 1fr; }
    LogView > .log-view--stderr { color: $error; }
    LogView > .log-view--marker { color: $warning; text-style: bold; }
    LogView > .log-view--match { background: $warning; color: $background; }
    """

    class NewLines(Message):
        """Lines arrived while follow is off: ``unseen`` in total since it was turned off."""

        def __init__(self, log_view: LogView, unseen: int) -> None:
            super().__init__()
            self.log_view = log_view
            self.unseen = unseen

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: list[LogLine] = []
        self.follow = True
        self.wrap = False
        self.stream = "combined"
        self.unseen = 0
        self.pattern: re.Pattern[str] | None = None
        self.match_line: int | None = None
        self._pending: list[tuple[str, str]] = []
        self._open: dict[str, int] = {}  # stream -> index of its unfinished last line
        self._display: list[tuple[int, int, int]] = []  # (line index, start, end)
        self._display_width = 0

    def on_mount(self) -> None:
        self.set_interval(0.1, self.flush)

    # -- writing ---------------------------------------------------------------

    def write(self, stream: str, data: bytes | str) -> None:
        """Queue output; it appears on the next flush (at most 100 ms later)."""
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        self._pending.append((stream, text))

    def marker(self, text: str) -> None:
        """Queue a marker line (trusted text, e.g. the log cap's dropped-bytes note)."""
        self._pending.append(("marker", text))

    def clear(self) -> None:
        self.lines.clear()
        self._pending.clear()
        self._open.clear()
        self.unseen = 0
        self._rebuild()

    def flush(self) -> None:
        """Fold queued output into lines with one size update and one refresh."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        before = len(self.lines)
        for stream, text in pending:
            if stream == "marker":
                self._open.clear()
                self.lines.append(LogLine("marker", text))
                continue
            parts = inert(text).split("\n")
            open_index = self._open.pop(stream, None)
            if open_index is not None:
                line = self.lines[open_index]
                line.text = (line.text + parts[0])[:_MAX_LINE]
                if len(parts) == 1:
                    self._open[stream] = open_index
                    continue
                parts = parts[1:]
            *complete, tail = parts
            self.lines.extend(LogLine(stream, part[:_MAX_LINE]) for part in complete)
            if tail:  # no newline yet: later output of this stream continues it
                self.lines.append(LogLine(stream, tail[:_MAX_LINE]))
                self._open[stream] = len(self.lines) - 1
        added = self._count_shown(before)
        self._rebuild()
        if self.follow:
            self.scroll_end(animate=False, immediate=True)
        elif added:
            self.unseen += added
            self.post_message(self.NewLines(self, self.unseen))

    def _count_shown(self, start: int) -> int:
        return sum(1 for line in self.lines[start:] if self._is_shown(line))

    def _is_shown(self, line: LogLine) -> bool:
        return self.stream == "combined" or line.stream in (self.stream, "marker")

    # -- layout ----------------------------------------------------------------

    def _rebuild(self) -> None:
        """Recompute display lines (filtering and wrapping) and the virtual size."""
        width = max(10, self.scrollable_content_region.width - 2)
        self._display_width = width
        display: list[tuple[int, int, int]] = []
        for index, line in enumerate(self.lines):
            if not self._is_shown(line):
                continue
            length = len(line.text)
            if self.wrap and length > width:
                display.extend((index, s, min(length, s + width)) for s in range(0, length, width))
            else:
                display.append((index, 0, length))
        self._display = display
        longest = max((end - start for _, start, end in display), default=0)
        self.virtual_size = Size(longest + 2, len(display))
        self.refresh()

    def on_resize(self) -> None:
        if self.wrap:
            self._rebuild()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = scroll_y + y
        if index >= len(self._display):
            return Strip.blank(width, base)
        line_index, start, end = self._display[index]
        line = self.lines[line_index]
        text = line.text[start:end]
        style = base
        gutter = "  "
        if line.stream == "stderr":
            style = base + self.get_component_rich_style("log-view--stderr")
            gutter = "! "
        elif line.stream == "marker":
            style = base + self.get_component_rich_style("log-view--marker")
            gutter = "  "
        segments = [Segment(gutter if start == 0 else "  ", style)]
        segments.extend(self._highlighted(text, style, line_index == self.match_line))
        strip = Strip(segments)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _highlighted(self, text: str, style: Style, is_current: bool) -> list[Segment]:
        if self.pattern is None:
            return [Segment(text, style)]
        hit = style + self.get_component_rich_style("log-view--match")
        if is_current:
            hit = hit + Style(underline=True)
        out, pos = [], 0
        for found in self.pattern.finditer(text):
            if found.start() == found.end():
                continue
            out.append(Segment(text[pos : found.start()], style))
            out.append(Segment(found.group(), hit))
            pos = found.end()
        out.append(Segment(text[pos:], style))
        return out

    # -- modes -----------------------------------------------------------------

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        if follow:
            self.unseen = 0
            self.scroll_end(animate=False, immediate=True)

    def set_wrap(self, wrap: bool) -> None:
        self.wrap = wrap
        self._rebuild()

    def set_stream(self, stream: str) -> None:
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {STREAMS}")
        self.stream = stream
        self._rebuild()

    def search(self, pattern: re.Pattern[str] | None) -> None:
        """Highlight ``pattern`` (None clears) and move to its first hit at or after the view."""
        self.pattern = pattern
        self.match_line = None
        if pattern is not None:
            self.next_match(1, from_top=True)
        self.refresh()

    def next_match(self, direction: int = 1, *, from_top: bool = False) -> bool:
        """Move to the next (1) or previous (-1) line matching the search; False if none."""
        if self.pattern is None or not self._display:
            return False
        rows = [li for li, start, _ in self._display if start == 0]
        if not rows:
            return False
        if self.match_line is None:
            current = -1 if direction > 0 else len(self.lines)
            if from_top:
                current = -1
        else:
            current = self.match_line
        order = rows if direction > 0 else list(reversed(rows))
        for line_index in order:
            ahead = line_index > current if direction > 0 else line_index < current
            if ahead and self.pattern.search(self.lines[line_index].text):
                self.match_line = line_index
                self._show_line(line_index)
                return True
        return False

    def _show_line(self, line_index: int) -> None:
        for row, (li, start, _) in enumerate(self._display):
            if li == line_index and start == 0:
                self.set_follow(False)
                self.scroll_to(y=max(0, row - 2), animate=False, immediate=True)
                break
        self.refresh()

    # -- scrolling: any move away from the end turns follow off ----------------

    def action_scroll_by(self, delta: int) -> None:
        self.set_follow(False)
        self.scroll_to(y=self.scroll_offset.y + delta, animate=False, immediate=True)

    def action_scroll_page(self, direction: int) -> None:
        self.set_follow(False)
        step = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_offset.y + direction * step, animate=False, immediate=True)

    def action_scroll_home_now(self) -> None:
        self.set_follow(False)
        self.scroll_to(y=0, animate=False, immediate=True)

    def action_scroll_end_now(self) -> None:
        self.scroll_end(animate=False, immediate=True)

    def shown_text(self) -> list[str]:
        """The displayed lines as plain text (for copy and for tests)."""
        return [self.lines[li].text[s:e] for li, s, e in self._display]
