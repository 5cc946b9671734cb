"""FleetBar: the one-line header (breadcrumbs left; agents, failing jobs, clock right)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

__all__ = ["FleetBar"]


class FleetBar(Static):
    """Set with ``show(crumbs, summary)``; the screen owns the text, the bar only lays it out."""

    DEFAULT_CSS = """
    FleetBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    def __init__(self) -> None:
        super().__init__("", markup=False)
        self._crumbs: list[str] = []
        self._summary = Text()

    def show(self, crumbs: list[str], summary: Text) -> None:
        self._crumbs = crumbs
        self._summary = summary
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        width = max(10, self.size.width - 2)
        right = self._summary
        left = Text(" › ".join(self._crumbs), style="bold", no_wrap=True, overflow="ellipsis")
        room = width - right.cell_len - 1
        if room < 8:  # too narrow: crumbs win, the summary goes
            left.truncate(width, overflow="ellipsis")
            self.update(left, layout=False)
            return
        left.truncate(room, overflow="ellipsis", pad=True)
        self.update(Text.assemble(left, " ", right), layout=False)
