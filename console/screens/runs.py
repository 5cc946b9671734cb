"""Runs: the execution history of the whole fleet, newest first, live.

The list is a ``RunList`` (Line API, keyset paging from the mirror), so it
stays fast at millions of rows. ``:runs job=.. status=.. since=24h`` sets the
structured filters; ``/`` adds a regex over job, agent, status, trigger and id
(``!`` inverts). Verbs: ``l``/enter log, ``R`` re-run, ``K`` kill (both
confirmed with the equivalent command, focus on Cancel).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static

from console.bindings import bindings
from console.cmdline import parse_filter
from console.fleet.mirror import RunFilter, StoredRun
from console.screens.base import SquScreen
from console.widgets.run_list import RunList
from shared.errors import SquError

__all__ = ["RunsScreen", "describe_filters"]


def describe_filters(filters: RunFilter, tz: tzinfo = UTC) -> str:
    """The filters in the ``:runs`` syntax (times shown in ``tz``), for the filter line."""
    words = []
    if filters.job:
        words.append(f"job={filters.job}")
    if filters.agent:
        words.append(f"agent={filters.agent}")
    if filters.statuses:
        words.append(f"status={','.join(sorted(filters.statuses))}")
    if filters.trigger:
        words.append(f"trigger={filters.trigger}")
    for word, bound in (("since", filters.since), ("until", filters.until)):
        if bound is not None:
            words.append(f"{word}={datetime.fromtimestamp(bound, tz):%m-%d %H:%M}")
    if filters.text:
        words.append(f"/{'!' if filters.invert else ''}{filters.text}")
    return " ".join(words)


class RunsScreen(SquScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "runs.logs", "runs.rerun", "runs.kill", "view.filter", "runs.copy"
    )

    def __init__(self, filters: RunFilter | None = None, *, crumbs: list[str] | None = None):
        super().__init__()
        self.initial = filters or RunFilter()
        self.base_crumbs = crumbs or ["runs"]

    def breadcrumbs(self) -> list[str]:
        return list(self.base_crumbs)

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(id="runs-filter", markup=False)
        yield RunList(self.squ.mirror, tz=self.squ.tz, filters=self.initial, id="runs")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.run_list.stale_agents = self.squ.stale_agents()
        self.run_list.focus()
        self._show_filter()

    @property
    def run_list(self) -> RunList:
        return self.query_one("#runs", RunList)

    def refresh_data(self) -> None:
        super().refresh_data()
        self.run_list.stale_agents = self.squ.stale_agents()
        self.run_list.reload()
        self._show_filter()

    def _show_filter(self) -> None:
        flt = self.run_list.filters
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{self.run_list.total:,} runs", style="bold")
        described = describe_filters(flt, self.squ.tz)
        text.append(f"  {described}" if described else "  all")
        # CONSOLE.md: stale is a word as well as a style. Rows of an agent that is not
        # up are drawn dim italic; the filter line says in words which agents those are.
        stale = sorted(self.run_list.stale_agents)
        if flt.agent:
            stale = [a for a in stale if a == flt.agent]
        if stale:
            text.append(f"  · {', '.join(stale)} stale (last known)", style="italic")
        self.query_one("#runs-filter", Static).update(text, layout=False)

    def apply_filters(self, filters: RunFilter) -> None:
        """Show ``filters`` (from ``:runs``); a bad regex is a toast, the view unchanged."""
        if not self.query(RunList):  # not composed yet (first visit): start with them
            self.initial = filters
            return
        try:
            self.run_list.set_filters(filters)
        except SquError as exc:
            self.notify(exc.message, title="filter", severity="error")
        self._show_filter()

    def action_filter(self) -> None:
        from console.screens.prompt import Prompt

        flt = self.run_list.filters
        current = ("!" if flt.invert else "") + flt.text

        def done(text: str | None) -> None:
            if text is not None:
                pattern, invert = parse_filter(text)
                self.apply_filters(replace(self.run_list.filters, text=pattern, invert=invert))

        self.app.push_screen(Prompt("/", current, placeholder="regex, !regex inverts"), done)

    def on_run_list_counted(self, event: RunList.Counted) -> None:
        event.stop()
        self._show_filter()

    def on_run_list_run_selected(self, event: RunList.RunSelected) -> None:
        event.stop()
        self.open_log(event.run)

    def open_log(self, run: StoredRun) -> None:
        from console.screens.logs import LogScreen

        self.app.push_screen(LogScreen(run.agent, run.execution.id))

    def action_logs(self) -> None:
        if run := self.run_list.selected:
            self.open_log(run)

    def action_copy_id(self) -> None:
        """Copy the selected execution's id (OSC 52: works over SSH)."""
        if run := self.run_list.selected:
            self.app.copy_to_clipboard(run.execution.id)
            self.notify(f"copied {run.execution.id}", title="copy")

    def action_rerun(self) -> None:
        from console.screens.confirm import ConfirmDialog
        from console.screens.trigger import equivalent_command

        run = self.run_list.selected
        if run is None:
            return
        ex = run.execution
        command = equivalent_command(ex.job, [run.agent], ex.params)

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.rerun(run)

        title = f"Run {ex.job} again on {run.agent}?"
        self.app.push_screen(ConfirmDialog(title, [run.agent], command, confirm_label="Run"), done)

    @work(group="actions", exit_on_error=False)
    async def rerun(self, run: StoredRun) -> None:
        ex = run.execution
        exec_id = await self.squ.call_agent(
            f"re-run {ex.job} on {run.agent}",
            self.squ.fleet.trigger(ex.job, run.agent, dict(ex.params)),
        )
        if exec_id is not None:
            self.notify(f"{ex.job} started on {run.agent}: {exec_id}", title="run")

    def action_kill(self) -> None:
        from console.screens.confirm import ConfirmDialog

        run = self.run_list.selected
        if run is None:
            return
        ex = run.execution
        if ex.status.is_final:
            self.notify(f"{ex.id} already ended ({ex.status})", severity="warning")
            return

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.kill(run)

        title = f"Kill {ex.job} ({ex.id[-8:]}) on {run.agent}?"
        command = f"squ cancel {ex.id} --on {run.agent}"
        self.app.push_screen(ConfirmDialog(title, [run.agent], command, confirm_label="Kill"), done)

    @work(group="actions", exit_on_error=False)
    async def kill(self, run: StoredRun) -> None:
        ex = run.execution

        async def cancel() -> bool:
            await self.squ.fleet.cancel(run.agent, ex.id)
            return True

        if await self.squ.call_agent(f"kill {ex.id} on {run.agent}", cancel()):
            self.notify(f"cancel sent for {ex.id[-8:]} on {run.agent}", title="kill")
