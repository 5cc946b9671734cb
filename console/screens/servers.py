"""Servers: every agent with its link, version, heartbeat metrics and last contact.

A row whose agent is not up is drawn dim with the word ``stale`` beside its
last-known metrics (CONSOLE.md: a stale value looks stale). Enter opens the
jobs on that agent.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from console.bindings import bindings
from console.fleet.source import AgentState, LinkState
from console.screens.base import SquScreen
from console.widgets.cells import ago, fit, percent, status_text

__all__ = ["ServerDetailScreen", "ServersScreen"]

LINK_STYLES = {
    LinkState.UP: "green",
    LinkState.CONNECTING: "yellow",
    LinkState.DOWN: "red bold",
    LinkState.AUTH_FAILED: "red bold",
    LinkState.PIN_MISMATCH: "magenta bold",
}


def link_text(state: AgentState) -> Text:
    return Text(state.link.value.replace("_", " "), style=LINK_STYLES[state.link])


class ServersScreen(SquScreen):
    crumbs: ClassVar[list[str]] = ["servers"]
    BINDINGS: ClassVar[list[BindingType]] = bindings("servers.open")

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        table: DataTable[str | Text] = DataTable(
            id="servers", cursor_type="row", zebra_stripes=False
        )
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#servers", DataTable)
        for label, width in (
            ("Agent", 10), ("Link", 11), ("Load", 5), ("CPU", 4), ("Mem", 4), ("Disk", 4),
            ("Run", 3), ("Last seen", 15), ("Contain", 7), ("Version", 8),
        ):  # fmt: skip
            table.add_column(label, width=width, key=label)
        self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        table = self.query_one("#servers", DataTable)
        cursor = table.cursor_row
        table.clear()
        now = self.squ.now()
        for state in self.squ.agents():
            table.add_row(*self.row(state, now), key=state.name)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    @staticmethod
    def row(state: AgentState, now: float) -> list[str | Text]:
        m = state.metrics
        style = "dim italic" if state.is_stale else ""
        cells: list[str | Text] = [
            Text(fit(state.name, 10).rstrip(), style=style),
            link_text(state),
        ]
        values = (
            [f"{m.load[0]:.2f}", percent(m.cpu_pct), percent(m.mem_pct), percent(m.disk_pct),
             str(m.running)]
            if m is not None
            else ["-"] * 5
        )  # fmt: skip
        cells += [Text(v, style=style) for v in values]
        seen = ago(state.last_seen, now)
        # CONSOLE.md: a stale value looks stale, in a word as well as in style.
        cells.append(Text(f"{seen}, stale" if state.is_stale and m else seen, style=style))
        cells.append(Text(m.containment if m and m.containment else "-", style=style))
        cells.append(Text(fit(state.version or "-", 8).rstrip(), style=style))
        return cells

    def selected_agent(self) -> str | None:
        table = self.query_one("#servers", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        agent = self.selected_agent()
        if agent:
            self.app.push_screen(ServerDetailScreen(agent))


class ServerDetailScreen(SquScreen):
    """One agent: its state in words and the jobs it runs."""

    BINDINGS: ClassVar[list[BindingType]] = bindings("jobs.open")

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def breadcrumbs(self) -> list[str]:
        return ["servers", self.agent]

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(id="server-info", markup=False)
        table: DataTable[str | Text] = DataTable(id="server-jobs", cursor_type="row")
        yield table
        yield from self.compose_footer()

    def on_mount(self) -> None:
        table = self.query_one("#server-jobs", DataTable)
        for label, width in (("Job", 20), ("Schedule", 14), ("Last", 9), ("On", 3), ("Source", 24)):
            table.add_column(label, width=width, key=label)
        self.refresh_data()

    def refresh_data(self) -> None:
        super().refresh_data()
        state = self.squ.agent(self.agent)
        info = Text(no_wrap=True, overflow="ellipsis")
        if state is None:
            info.append(f"{self.agent}: not in the inventory", style="red")
        else:
            info.append(f"{state.name} ", style="bold")
            info.append_text(link_text(state))
            info.append(f"  {state.url}  version {state.version or '-'}")
            if state.error:
                info.append(f"\n{fit(state.error, 200).rstrip()}", style="red")
        self.query_one("#server-info", Static).update(info)
        table = self.query_one("#server-jobs", DataTable)
        table.clear()
        for stored in self.squ.mirror.jobs(agent=self.agent):
            job = stored.record.job
            last = self.squ.mirror.last_run(job.name, self.agent)
            table.add_row(
                fit(job.name, 20).rstrip(),
                job.cron or (f"at {job.at}" if job.at else "manual"),
                status_text(last.execution.status) if last else Text("-"),
                "on" if job.enabled else "off",
                stored.record.source,
                key=job.name,
            )

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        from console.screens.job_detail import JobDetailScreen

        table = self.query_one("#server-jobs", DataTable)
        if table.row_count:
            name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            self.app.push_screen(JobDetailScreen(str(name)))
