"""Job detail: one fleet job in tabs (overview, runs, logs, definition, next fire times).

Everything comes from the mirror (no network), so the screen opens at once;
the runs tab is the same virtual ``RunList`` as the Runs view, filtered to the
job. ``d`` on the Jobs view opens the fire-times tab directly.
"""

from __future__ import annotations

from datetime import UTC
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static, TabbedContent, TabPane

from console.bindings import bindings
from console.fleet.mirror import JobSummary, RunFilter, StoredRun
from console.schedule import preview
from console.screens.base import SquScreen
from console.widgets.cells import ago, duration, percent, sparkline, status_text
from console.widgets.log_view import LogView
from console.widgets.run_list import RunList
from shared.jobs import job_to_toml
from shared.models import Job

__all__ = ["JobDetailScreen", "overview_text"]

TABS = ("overview", "runs", "logs", "definition", "fires")


def overview_text(s: JobSummary, now: float, agent_zone: str = "") -> Text:
    job = s.job
    shown = preview(job, now=now, n=1, agent_zone=agent_zone)
    text = Text()

    def field(label: str, value: str | Text) -> None:
        text.append(f"{label:<13}", style="bold")
        text.append_text(value if isinstance(value, Text) else Text(value))
        text.append("\n")

    if job.description:
        field("description", job.description)
    field("command", job.command or job.script or "-")
    field("agents", ", ".join(s.agents))
    field("schedule", f"{job.cron or job.at or 'manual only'}  ({shown.error or shown.words})")
    field("zone", shown.zone.key)
    if shown.times:
        when = shown.times[0]
        field("next run", f"{ago(when.timestamp(), now)}  {when:%Y-%m-%d %H:%M %Z}")
    field("enabled", "yes" if s.is_enabled else "no (suspended)")
    field("timeout", duration(job.timeout_s * 1000) if job.timeout_s else "none")
    retry = job.retry
    field("retry", f"{retry.count}x, {retry.backoff} {retry.delay_s:g}s" if retry.count else "none")
    field("concurrency", f"{job.concurrency}, misfire {job.misfire}")
    field("approval", str(job.approval))
    last = status_text(s.last_status) if s.last_status else Text("never ran")
    field("last run", last)
    rate = None if s.success_rate is None else s.success_rate * 100
    field("success", f"{percent(rate)}  {sparkline(s.durations_ms, 20)}")
    field("source", ", ".join(s.sources))
    return text


def fire_times_text(job: Job, now: float, agent_zone: str = "") -> Text:
    shown = preview(job, now=now, n=10, agent_zone=agent_zone)
    text = Text()
    text.append(f"{job.cron or job.at or 'manual only'}: ", style="bold")
    text.append(shown.error or shown.words, style="red" if shown.error else "")
    text.append(f"\n\n{'in ' + shown.zone.key:<32}UTC\n", style="bold")
    for when in shown.times:
        text.append(f"{when:%a %Y-%m-%d %H:%M %Z}".ljust(32))
        text.append(f"{when.astimezone(UTC):%Y-%m-%d %H:%M}\n")
    if not shown.times and not shown.error:
        text.append("no upcoming fire times\n")
    return text


class JobDetailScreen(SquScreen):
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "jobs.trigger", "jobs.edit", "jobs.logs", "runs.logs"
    )

    def __init__(self, name: str, *, tab: str = "overview") -> None:
        super().__init__()
        self.job_name = name
        self.initial_tab = tab if tab in TABS else "overview"

    def breadcrumbs(self) -> list[str]:
        return ["jobs", self.job_name]

    def summary(self) -> JobSummary | None:
        for s in self.squ.mirror.job_summaries():
            if s.name == self.job_name:
                return s
        return None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with TabbedContent(initial=self.initial_tab, id="job-tabs"):
            with TabPane("Overview", id="overview"):
                yield Static(id="job-overview", markup=False)
            with TabPane("Runs", id="runs"):
                yield RunList(
                    self.squ.mirror,
                    tz=self.squ.tz,
                    filters=RunFilter(job=self.job_name),
                    show_job=False,
                    id="job-runs",
                )
            with TabPane("Logs", id="logs"):
                yield LogView(id="job-log")
            with TabPane("Definition", id="definition"):
                yield Static(id="job-definition", markup=False)
            with TabPane("Next fires", id="fires"):
                yield Static(id="job-fires", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        super().on_mount()
        self.refresh_data()
        self._show_last_log()

    def _agent_zone(self, s: JobSummary) -> str:
        agent = self.squ.agent(s.agents[0]) if s.agents else None
        return agent.timezone if agent else ""

    def refresh_data(self) -> None:
        super().refresh_data()
        s = self.summary()
        if s is None:
            self.query_one("#job-overview", Static).update(
                Text(f"no job named {self.job_name!r} in the mirror", style="red")
            )
            return
        now = self.squ.now()
        zone = self._agent_zone(s)
        self.query_one("#job-overview", Static).update(overview_text(s, now, zone))
        definition = Text()
        for stored in self.squ.mirror.jobs(name=self.job_name):
            r = stored.record
            definition.append(f"# {stored.agent}: version {r.version}, {r.source}\n", style="dim")
        definition.append(job_to_toml(s.job))
        self.query_one("#job-definition", Static).update(definition)
        self.query_one("#job-fires", Static).update(fire_times_text(s.job, now, zone))
        runs = self.query_one("#job-runs", RunList)
        runs.stale_agents = self.squ.stale_agents()
        runs.reload()

    def _show_last_log(self) -> None:
        """The logs tab shows the last run's tails from the mirror; ``l`` opens the full log."""
        last = self.squ.mirror.last_run(self.job_name)
        view = self.query_one("#job-log", LogView)
        view.clear()
        if last is None:
            view.marker("··· no runs yet ···")
        else:
            ex = last.execution
            view.marker(f"··· last run {ex.id[-8:]} on {last.agent}: {ex.status} · l: full log ···")
            if ex.stdout_tail:
                view.write("stdout", ex.stdout_tail)
            if ex.stderr_tail:
                view.write("stderr", ex.stderr_tail)
        view.flush()

    def _last(self) -> StoredRun | None:
        return self.squ.mirror.last_run(self.job_name)

    def action_logs(self) -> None:
        from console.screens.logs import LogScreen

        runs = self.query_one("#job-runs", RunList)
        tabs = self.query_one("#job-tabs", TabbedContent)
        run = runs.selected if tabs.active == "runs" else self._last()
        if run is None:
            self.notify(f"{self.job_name} has not run yet", severity="warning")
            return
        self.app.push_screen(LogScreen(run.agent, run.execution.id))

    def on_run_list_run_selected(self, event: RunList.RunSelected) -> None:
        from console.screens.logs import LogScreen

        event.stop()
        self.app.push_screen(LogScreen(event.run.agent, event.run.execution.id))

    def action_edit(self) -> None:
        from console.screens.job_editor import JobEditorScreen

        self.app.push_screen(JobEditorScreen(self.job_name))

    def action_trigger(self) -> None:
        from console.screens.trigger import TriggerDialog, TriggerRequest

        s = self.summary()
        if s is None:
            return

        def done(request: TriggerRequest | None) -> None:
            if request is not None:
                self.squ.start_runs(request)

        self.app.push_screen(TriggerDialog(s, self.squ.agents()), done)
