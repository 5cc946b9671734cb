"""The log viewer: live follow of a running execution, or the stored log of a finished one.

Output is fetched by a worker (``exclusive``: opening another log replaces
it) through the fleet, never on the UI thread. When the agent is not up, the
last KiB of each stream kept in the mirror are shown instead, marked as such.
Keys (CONSOLE.md): ``f`` follow on/off (a "+N new lines" badge while off),
``w`` wrap, ``o`` stdout / stderr / combined, ``/`` search, ``n``/``N`` next /
previous hit.
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static

from console.bindings import bindings
from console.fleet.source import LogChunk, LogPiece
from console.screens.base import SquScreen
from console.widgets.cells import duration, status_text
from console.widgets.log_view import STREAMS, LogView
from shared.errors import SquError

__all__ = ["LogScreen", "human_bytes"]

PAGE_PIECES = 256


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


class LogScreen(SquScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "log.follow", "log.wrap", "log.stream", "log.search", "log.next", "log.previous", "log.copy"
    )

    def __init__(self, agent: str, exec_id: str) -> None:
        super().__init__()
        self.agent = agent
        self.exec_id = exec_id
        self._early: list[LogChunk] = []  # chunks that arrived before the view existed

    def breadcrumbs(self) -> list[str]:
        run = self.squ.mirror.get_run(self.agent, self.exec_id)
        job = run.execution.job if run else "?"
        return [job, f"run {self.exec_id[-8:]}", "logs"]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(id="log-info", markup=False)
        yield LogView(id="log")
        yield Static(id="log-badge", markup=False)
        yield from self.compose_footer()

    @property
    def log_view(self) -> LogView:
        return self.query_one("#log", LogView)

    def on_mount(self) -> None:
        super().on_mount()
        self.log_view.focus()
        self._show_info()
        self._show_badge()
        for early in self._early:
            self.log_view.write(early.stream, early.data)
        self._early.clear()
        self.load()

    def refresh_data(self) -> None:
        super().refresh_data()
        self._show_info()

    def _show_info(self) -> None:
        run = self.squ.mirror.get_run(self.agent, self.exec_id)
        text = Text(no_wrap=True, overflow="ellipsis")
        if run is None:
            text.append(f"{self.exec_id} on {self.agent}: not in the mirror yet", style="yellow")
        else:
            ex = run.execution
            text.append(f"{ex.job} ", style="bold")
            text.append(f"on {run.agent} ")
            text.append_text(status_text(ex.status))
            if ex.exit_code is not None:
                text.append(f" exit {ex.exit_code}")
            text.append(f"  {duration(ex.duration_ms)}  {human_bytes(ex.log_bytes)}")
            if ex.log_dropped_bytes:
                text.append(f" ({human_bytes(ex.log_dropped_bytes)} capped)", style="yellow")
        state = self.squ.agent(self.agent)
        if state is not None and state.is_stale:
            # CONSOLE.md: stale is a word. A followed log waits for the link to come
            # back and carries on from its cursor; until then, say why nothing arrives.
            text.append(f"  {self.agent} {state.link.value.replace('_', ' ')}", style="bold red")
        view = self.log_view
        text.append(f"  [{view.stream}{' wrap' if view.wrap else ''}")
        text.append(" follow]" if view.follow else "]")
        self.query_one("#log-info", Static).update(text, layout=False)

    def _show_badge(self) -> None:
        badge = self.query_one("#log-badge", Static)
        unseen = self.log_view.unseen
        badge.display = unseen > 0 and not self.log_view.follow
        badge.update(Text(f"+{unseen} new lines (f to follow)", style="bold reverse"))

    # -- loading -------------------------------------------------------------------

    @work(exclusive=True, group="log-tail", exit_on_error=False)
    async def load(self) -> None:
        """Stream the log into the view: follow a running run, page a finished one."""
        view = self.log_view
        run = self.squ.mirror.get_run(self.agent, self.exec_id)
        state = self.squ.agent(self.agent)
        if state is None or state.is_stale:
            link = state.link.value if state else "not in the inventory"
            self._show_tails(f"agent {self.agent} is {link}: last output kept in the mirror")
            return
        try:
            if run is not None and not run.execution.status.is_final:
                async for piece in self.squ.fleet.follow_log(self.agent, self.exec_id, 0):
                    self._add(piece)
                return
            offset = 0
            while True:
                page = await self.squ.call_agent(
                    "read log",
                    self.squ.fleet.read_log(self.agent, self.exec_id, offset, PAGE_PIECES),
                )
                if page is None:
                    self._show_tails("could not read the stored log: last output in the mirror")
                    return
                for piece in page.pieces:
                    self._add(piece)
                offset = page.next_offset
                if page.is_eof or not page.pieces:
                    break
        except SquError as exc:
            self.notify(exc.message, title="log", severity="error")
            self._show_tails("log unavailable: last output kept in the mirror")
        view.flush()

    def _add(self, piece: LogPiece) -> None:
        if piece.stream == "dropped":
            self.log_view.marker(
                f"··· {human_bytes(piece.dropped_bytes)} dropped by the log cap"
                " (head above, tail below) ···"
            )
        else:
            self.log_view.write(piece.stream, piece.data)

    def _show_tails(self, why: str) -> None:
        run = self.squ.mirror.get_run(self.agent, self.exec_id)
        view = self.log_view
        view.marker(f"··· {why} ···")
        if run is not None:
            if run.execution.stdout_tail:
                view.write("stdout", run.execution.stdout_tail)
            if run.execution.stderr_tail:
                view.write("stderr", run.execution.stderr_tail)
        view.flush()

    def receive_chunk(self, message: LogChunk) -> None:
        """Live output posted for this execution (routed by the app)."""
        if not self.query("#log"):
            self._early.append(message)
            return
        self.log_view.write(message.stream, message.data)

    def on_log_view_new_lines(self, event: LogView.NewLines) -> None:
        event.stop()
        self._show_badge()

    # -- keys ------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.log_view.set_follow(not self.log_view.follow)
        self._show_badge()
        self._show_info()

    def action_wrap(self) -> None:
        self.log_view.set_wrap(not self.log_view.wrap)
        self._show_info()

    def action_stream(self) -> None:
        current = STREAMS.index(self.log_view.stream)
        self.log_view.set_stream(STREAMS[(current + 1) % len(STREAMS)])
        self._show_info()

    def action_search(self) -> None:
        from console.screens.prompt import Prompt

        def done(text: str | None) -> None:
            if text is None:
                return
            if not text:
                self.log_view.search(None)
                return
            try:
                pattern = re.compile(text, re.IGNORECASE)
            except re.error as exc:
                self.notify(f"/{text}: {exc}", title="search", severity="error")
                return
            self.log_view.search(pattern)
            if self.log_view.match_line is None:
                self.notify(f"/{text}: no match", severity="warning")
            self._show_info()

        current = self.log_view.pattern.pattern if self.log_view.pattern else ""
        self.app.push_screen(Prompt("/", current, placeholder="search (regex)"), done)

    def action_copy(self) -> None:
        """Copy the log as shown (the current stream, inert text) with OSC 52."""
        text = "\n".join(self.log_view.shown_text())
        self.app.copy_to_clipboard(text)
        self.notify(f"copied {len(text):,} characters", title="copy")

    def action_next_match(self, direction: int) -> None:
        if not self.log_view.next_match(direction):
            self.notify("no more matches", severity="warning")
        self._show_info()
