"""Jobs: one row per fleet job (the same name on several agents is one job).

Columns: name, enabled, schedule, next run (relative and absolute in the
job's zone), last status, success rate, duration sparkline, targets, source,
and the schedule in words. Verbs on the selected row (CONSOLE.md): ``t``
trigger, ``s`` suspend/resume, ``e`` edit, ``h`` its runs, ``l`` the last log,
``d`` describe, enter for the detail; ``/`` filters by regex (``!`` inverts).
"""

from __future__ import annotations

import re
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable

from console.bindings import bindings
from console.cmdline import parse_filter
from console.fleet.mirror import JobSummary, RunFilter
from console.schedule import preview
from console.screens.base import SquScreen
from console.widgets.cells import ago, fit, percent, sparkline, status_text

__all__ = ["JobsScreen", "next_run_text", "source_text"]

COLUMNS = (
    ("Job", 14), ("On", 3), ("Schedule", 12), ("Next", 17), ("Last", 8), ("OK", 4),
    ("Trend", 8), ("Targets", 14), ("Source", 16), ("In words", 36),
)  # fmt: skip


def source_text(sources: tuple[str, ...]) -> str:
    """ "console", or the jobs.d file name, or "mixed" when agents disagree."""
    if len(sources) > 1:
        return "mixed"
    source = sources[0] if sources else ""
    return source.removeprefix("file:").rsplit("/", 1)[-1] if source.startswith("file:") else source


def next_run_text(summary: JobSummary, now: float, agent_zone: str = "") -> str:
    if not summary.is_enabled:
        return "suspended"
    shown = preview(summary.job, now=now, n=1, agent_zone=agent_zone)
    if shown.error:
        return "invalid"
    if not shown.times:
        return "-"
    when = shown.times[0]
    return f"{ago(when.timestamp(), now).removeprefix('in ')} {when:%H:%M %Z}"


class JobsScreen(SquScreen):
    crumbs: ClassVar[list[str]] = ["jobs"]
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "jobs.trigger", "jobs.suspend", "jobs.edit", "jobs.new", "jobs.runs",
        "jobs.logs", "jobs.describe", "view.filter", "jobs.open",
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.pattern: re.Pattern[str] | None = None
        self.invert = False
        self.summaries: dict[str, JobSummary] = {}

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        table: DataTable[str | Text] = DataTable(id="jobs", cursor_type="row")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#jobs", DataTable)
        for label, width in COLUMNS:
            table.add_column(label, width=width, key=label)
        self.refresh_data()

    def breadcrumbs(self) -> list[str]:
        crumbs = ["jobs"]
        if self.pattern is not None:
            crumbs.append(f"/{'!' if self.invert else ''}{self.pattern.pattern}")
        return crumbs

    def refresh_data(self) -> None:
        super().refresh_data()
        table = self.query_one("#jobs", DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.squ.now()
        stale = self.squ.stale_agents()
        self.summaries = {}
        for summary in self.squ.mirror.job_summaries():
            if not self._matches(summary):
                continue
            self.summaries[summary.name] = summary
            table.add_row(*self.row(summary, now, stale), key=summary.name)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def _matches(self, summary: JobSummary) -> bool:
        if self.pattern is None:
            return True
        text = " ".join((summary.name, *summary.agents, summary.job.description))
        return bool(self.pattern.search(text)) != self.invert

    def row(self, s: JobSummary, now: float, stale: frozenset[str]) -> list[str | Text]:
        agent = self.squ.agent(s.agents[0]) if s.agents else None
        shown = preview(s.job, now=now, n=1, agent_zone=agent.timezone if agent else "")
        is_stale = all(a in stale for a in s.agents)
        style = "dim italic" if is_stale else ""
        schedule = s.job.cron or ("at" if s.job.at else "manual")
        return [
            Text(fit(s.name, 14).rstrip(), style=style),
            Text("on" if s.is_enabled else "off", style="" if s.is_enabled else "yellow"),
            Text(fit(schedule, 12).rstrip(), style=style),
            Text(next_run_text(s, now, agent.timezone if agent else ""), style=style),
            status_text(s.last_status) if s.last_status else Text("-"),
            Text(percent(None if s.success_rate is None else s.success_rate * 100), style=style),
            Text(sparkline(s.durations_ms, 8), style="cyan"),
            Text(fit(",".join(s.job.targets or s.agents), 14).rstrip(), style=style),
            Text(source_text(s.sources), style=style),
            Text(shown.error or shown.words, style="red" if shown.error else style),
        ]

    # -- selection -------------------------------------------------------------

    def selected(self) -> JobSummary | None:
        table = self.query_one("#jobs", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.summaries.get(str(key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    # -- verbs -------------------------------------------------------------------

    def action_open(self) -> None:
        from console.screens.job_detail import JobDetailScreen

        if job := self.selected():
            self.app.push_screen(JobDetailScreen(job.name))

    def action_describe(self) -> None:
        from console.screens.job_detail import JobDetailScreen

        if job := self.selected():
            self.app.push_screen(JobDetailScreen(job.name, tab="fires"))

    def action_edit(self) -> None:
        from console.screens.job_editor import JobEditorScreen

        if job := self.selected():
            self.app.push_screen(JobEditorScreen(job.name))

    def action_new(self) -> None:
        from console.screens.job_editor import JobEditorScreen

        self.app.push_screen(JobEditorScreen(None))

    def action_runs(self) -> None:
        from console.screens.runs import RunsScreen

        if job := self.selected():
            self.app.push_screen(RunsScreen(RunFilter(job=job.name), crumbs=["jobs", job.name]))

    def action_logs(self) -> None:
        from console.screens.logs import LogScreen

        if job := self.selected():
            last = self.squ.mirror.last_run(job.name)
            if last is None:
                self.notify(f"{job.name} has not run yet", severity="warning")
                return
            self.app.push_screen(LogScreen(last.agent, last.execution.id))

    def action_trigger(self) -> None:
        from console.screens.trigger import TriggerDialog, TriggerRequest

        job = self.selected()
        if job is None:
            return

        def done(request: TriggerRequest | None) -> None:
            if request is not None:
                self.squ.start_runs(request)

        self.app.push_screen(TriggerDialog(job, self.squ.agents()), done)

    def action_suspend(self) -> None:
        from console.screens.confirm import ConfirmDialog

        job = self.selected()
        if job is None:
            return
        enable = not job.is_enabled
        verb = "resume" if enable else "suspend"
        # The CLI's own command for the same action (squ suspend / squ resume).
        command = f"squ {verb} {job.name}" + "".join(f" --on {a}" for a in job.agents)

        def done(confirmed: bool | None) -> None:
            if confirmed:
                self.set_enabled(job, enable)

        if len(job.agents) > 1:
            title = f"{verb.capitalize()} {job.name} on {len(job.agents)} agents?"
            self.app.push_screen(ConfirmDialog(title, job.agents, command), done)
        else:
            self.set_enabled(job, enable)

    @work(group="actions", exit_on_error=False)
    async def set_enabled(self, job: JobSummary, enable: bool) -> None:
        for agent in job.agents:
            done = await self.squ.call_agent(
                f"{'resume' if enable else 'suspend'} {job.name} on {agent}",
                self.squ.fleet.set_enabled(agent, job.name, enable),
            )
            if done is not None:
                self.notify(f"{job.name} {'resumed' if enable else 'suspended'} on {agent}")

    def action_filter(self) -> None:
        from console.screens.prompt import Prompt

        current = (
            "" if self.pattern is None else ("!" if self.invert else "") + self.pattern.pattern
        )

        def done(text: str | None) -> None:
            if text is not None:
                self.apply_filter(text)

        self.app.push_screen(Prompt("/", current, placeholder="regex, !regex inverts"), done)

    def apply_filter(self, text: str) -> None:
        pattern, invert = parse_filter(text)
        if not pattern:
            self.pattern = None
        else:
            try:
                self.pattern = re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                self.notify(f"/{pattern}: {exc}", title="filter", severity="error")
                return
        self.invert = invert
        self.refresh_data()
