"""RunList: the execution history as a Line-API virtual view over the mirror.

The built-in DataTable froze for about 15 s at 100k rows (CONSOLE.md); this
view renders only the visible lines and fetches them a page at a time with
keyset queries (``Mirror.page_runs``: the next page starts after the last key
held), so painting costs the same at a thousand or a million rows. A jump far
away (End, dragging the scrollbar) fetches by offset once, then keyset paging
resumes from there. Row 0 is a fixed column header.

Attributes down: the screen sets ``filters`` and ``stale_agents`` and calls
``reload()`` when the mirror changed. Messages up: ``RunList.RunSelected``
(enter) and ``RunList.CursorMoved``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import work
from textual.binding import BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from console.bindings import bindings
from console.fleet.mirror import Mirror, RunFilter, StoredRun
from console.widgets.cells import STATUS_STYLES, STATUS_WORDS, clock_time, duration, fit

__all__ = ["RunList"]

PAGE = 200
# The cache holds a few pages around the viewport; beyond that memory would
# grow with scrolling, so far rows are dropped and fetched again if needed.
MAX_CACHED = PAGE * 8

# (title, width); the job column takes what is left (min 8, max 32).
_FIXED = (
    ("When", 14),
    ("Agent", 8),
    ("Status", 9),
    ("Trigger", 8),
    ("Try", 3),
    ("Took", 7),
    ("Exit", 4),
    ("Id", 8),
)


class RunList(ScrollView, can_focus=True):
    """Every run matching ``filters``, newest first, a screenful at a time."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "runs.up",
        "runs.down",
        "runs.page_up",
        "runs.page_down",
        "runs.top",
        "runs.bottom",
        "runs.open",
    )

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "run-list--header",
        "run-list--cursor",
        "run-list--stale",
    }

    DEFAULT_CSS = """
    RunList { height: 1fr; }
    RunList > .run-list--header { text-style: bold; background: $panel; }
    RunList > .run-list--cursor { background: $block-cursor-background;
                                  color: $block-cursor-foreground; }
    RunList:blur > .run-list--cursor { background: $block-cursor-blurred-background;
                                       color: $block-cursor-blurred-foreground; }
    RunList > .run-list--stale { text-style: dim italic; }
    """

    class RunSelected(Message):
        """The operator pressed enter on ``run``."""

        def __init__(self, run_list: RunList, run: StoredRun) -> None:
            super().__init__()
            self.run_list = run_list
            self.run = run

    class Counted(Message):
        """The number of matching runs is now known (or changed)."""

        def __init__(self, run_list: RunList, total: int) -> None:
            super().__init__()
            self.run_list = run_list
            self.total = total

    class CursorMoved(Message):
        def __init__(self, run_list: RunList, run: StoredRun | None) -> None:
            super().__init__()
            self.run_list = run_list
            self.run = run

    def __init__(
        self,
        mirror: Mirror,
        *,
        tz: tzinfo,
        filters: RunFilter | None = None,
        show_job: bool = True,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.mirror = mirror
        self.tz = tz
        self.filters = filters or RunFilter()
        self.show_job = show_job
        self.stale_agents: frozenset[str] = frozenset()
        self.cursor = 0
        self.total = 0
        self._rows: dict[int, StoredRun] = {}
        self._counting = False  # a count runs in a thread
        self._count_again = False  # the mirror changed while it ran
        self.on_error: Callable[[Exception], None] | None = None

    # -- data ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.reload()

    def reload(self, *, keep_cursor: bool = True) -> None:
        """Drop cached rows and recount; call when the mirror or the filter changed.

        The first screenful never waits for a full count: without filters the
        total is the mirror's highest rowid (exact, as the mirror never deletes
        runs); with filters the first page tells whether there are more, and
        the exact count follows from a thread worker on its own connection
        (``RunList.Counted``). Counts are coalesced: while one runs, later
        reloads ask for one more at its end, so a burst of sync batches costs
        at most two counts, not one per batch.
        """
        self._rows.clear()
        if self.filters == RunFilter():
            self._set_total(self.mirror.estimate_runs(), keep_cursor=keep_cursor)
            return
        first = self.mirror.page_runs(self.filters, None, PAGE)
        self._rows = dict(enumerate(first))
        self._set_total(len(first), keep_cursor=keep_cursor)
        if len(first) >= PAGE:
            if self._counting:
                self._count_again = True
            else:
                self._counting = True
                self._count_exactly(self.filters)

    def _set_total(self, total: int, *, keep_cursor: bool = True) -> None:
        self.total = total
        self.cursor = min(self.cursor, max(0, self.total - 1)) if keep_cursor else 0
        self.virtual_size = Size(self.size.width, self.total + 1)
        self.refresh()
        self.post_message(self.Counted(self, total))

    @work(thread=True, group="run-count", exit_on_error=False)
    def _count_exactly(self, filters: RunFilter) -> None:
        total: int | None = None
        try:
            total = self.mirror.count_runs_apart(filters)
        finally:  # even when the count failed, so the next reload can count again
            self.app.call_from_thread(self._counted, filters, total)

    def _counted(self, filters: RunFilter, total: int | None) -> None:
        self._counting = False
        if self._count_again:
            self._count_again = False
            self._counting = True
            self._count_exactly(self.filters)
            return
        if total is not None and filters == self.filters and total != self.total:
            self._set_total(total)

    def set_filters(self, filters: RunFilter) -> None:
        """Show ``filters`` from the top (raises MirrorError for a bad regex, nothing changed)."""
        filters.where()  # validate (a bad regex raises) before replacing anything
        self.filters = filters
        self.scroll_to(y=0, animate=False)
        self.reload(keep_cursor=False)

    def row(self, index: int) -> StoredRun | None:
        """The run at ``index`` (0 = newest), fetched with one page query on a miss."""
        if not 0 <= index < self.total:
            return None
        found = self._rows.get(index)
        if found is not None:
            return found
        if index - 1 in self._rows:  # scrolling down: the page after the row above
            page = self.mirror.page_runs(self.filters, self._rows[index - 1].key, PAGE)
            start = index
        elif index + 1 in self._rows:  # scrolling up: the page before the row below
            page = self.mirror.page_runs_after(self.filters, self._rows[index + 1].key, PAGE)
            start = index + 1 - len(page)
        else:  # a jump: one offset query, keyset from there on
            start = max(0, index - PAGE // 2)
            page = self.mirror.page_runs_at(self.filters, start, PAGE)
        if len(self._rows) + len(page) > MAX_CACHED:
            self._rows = {i: r for i, r in self._rows.items() if abs(i - index) < MAX_CACHED // 2}
        for offset, run in enumerate(page):
            self._rows[start + offset] = run
        return self._rows.get(index)

    @property
    def selected(self) -> StoredRun | None:
        return self.row(self.cursor)

    # -- rendering -----------------------------------------------------------

    def _columns(self, width: int) -> list[tuple[str, int]]:
        fixed = sum(w for _, w in _FIXED) + len(_FIXED)
        columns = list(_FIXED)
        if self.show_job:
            job_width = max(8, min(32, width - fixed - 1))
            columns.insert(1, ("Job", job_width))
        return columns

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        columns = self._columns(width)
        if y == 0:
            style = self.get_component_rich_style("run-list--header")
            text = " ".join(fit(title, w) for title, w in columns)
            return Strip([Segment(text, style)]).adjust_cell_length(width, style)
        index = self.scroll_offset.y + y - 1
        run = self.row(index)
        if run is None:
            return Strip.blank(width, base)
        style = base
        if run.agent in self.stale_agents:
            style = base + self.get_component_rich_style("run-list--stale")
        if index == self.cursor:
            style = style + self.get_component_rich_style("run-list--cursor")
        return self._render_run(run, columns, style).adjust_cell_length(width, style)

    def _render_run(self, run: StoredRun, columns: list[tuple[str, int]], style: Style) -> Strip:
        ex = run.execution
        when = ex.started_at or ex.scheduled_for or ex.created_at
        values = {
            "When": clock_time(when, self.tz),
            "Job": ex.job,
            "Agent": run.agent,
            "Trigger": ex.trigger,
            "Try": str(ex.retry_index) if ex.retry_index else "",
            "Took": duration(ex.duration_ms),
            "Exit": "" if ex.exit_code is None else str(ex.exit_code),
            "Id": ex.id[-8:],
        }
        segments = []
        for title, width in columns:
            if title == "Status":
                word = STATUS_WORDS.get(ex.status, ex.status)
                segments.append(Segment(fit(word, width), style + STATUS_STYLES.get(ex.status)))
            else:
                segments.append(Segment(fit(values[title], width), style))
            segments.append(Segment(" ", style))
        return Strip(segments)

    # -- actions ---------------------------------------------------------------

    def _move_to(self, index: int) -> None:
        if self.total == 0:
            return
        index = max(0, min(self.total - 1, index))
        old = self.cursor
        self.cursor = index
        visible = max(1, self.scrollable_content_region.height - 1)
        top = round(self.scroll_offset.y)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)
        self.refresh_lines(old - top + 1)
        self.refresh_lines(index - top + 1)
        self.refresh()
        self.post_message(self.CursorMoved(self, self.selected))

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        self._move_to(self.cursor + direction * visible)

    def action_jump_top(self) -> None:
        self._move_to(0)

    def action_jump_bottom(self) -> None:
        self._move_to(self.total - 1)

    def action_select(self) -> None:
        run = self.selected
        if run is not None:
            self.post_message(self.RunSelected(self, run))

    def on_click(self, event: object) -> None:
        offset_y = getattr(event, "y", None)
        if isinstance(offset_y, int) and offset_y >= 1:
            self._move_to(round(self.scroll_offset.y) + offset_y - 1)
