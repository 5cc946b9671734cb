"""Alerts (key 7): what the agents raised (unacknowledged by default), how each was delivered.

The table lists the alerts of every agent that is up (asked over the wire in a
worker, re-asked when the fleet reports a change and on ``g``); ``u`` shows
acknowledged ones too. The pane below shows the highlighted alert in words,
its reason and each channel's delivery (sent, pending with its last error,
failed). ``a`` acknowledges it on its agent, which records who did it in the
audit log (docs/alerts.md). Agents that are down are named in the pane: the
console notices what no agent can report.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from console.bindings import bindings
from console.schedule import job_zone
from console.screens.base import SquScreen
from shared import cron
from shared.alerts import Alert, summary
from shared.errors import SquError
from shared.models import Job
from shared.textsafe import inert

__all__ = ["AlertsScreen", "alert_text", "overdue_jobs"]

# Enough to show that something is overdue without walking a per-second job's backlog.
_MAX_TICKS_LOOKED_AT = 1000


def overdue_jobs(
    jobs: list[Job], *, since: float, now: float, agent_zone: str = ""
) -> list[tuple[str, float]]:
    """(job, first tick missed) for each enabled scheduled job due in ``(since, now]``.

    What no agent can report: the jobs of an agent that stopped answering at
    ``since`` that should have run since (never raises; a bad schedule is skipped).
    """
    out = []
    start = dt.datetime.fromtimestamp(since, dt.UTC)
    end = dt.datetime.fromtimestamp(now, dt.UTC)
    for job in jobs:
        if not job.enabled or job.cron is None or job.cron.strip().lower() == "@reboot":
            continue
        try:
            ticks = cron.fire_times(job.cron, tz=job_zone(job, agent_zone), after=start, until=end)
            first = next(itertools.islice(ticks, _MAX_TICKS_LOOKED_AT), None)
        except (SquError, ValueError):
            continue
        if first is not None:
            out.append((job.name, first.timestamp()))
    return sorted(out, key=lambda pair: pair[1])


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def alert_text(alert: Alert, agent: str) -> str:
    """The alert in full, as plain text (reasons are hostile: made inert)."""
    lines = [
        inert(summary(alert)),
        f"agent {agent}   job {alert.job}   execution {alert.execution_id}",
        f"raised {_when(alert.created_at)}   status {alert.status.value}   "
        f"attempt {alert.attempt} of {alert.attempts}",
    ]
    if alert.acked_at is not None:
        lines.append(f"acknowledged by {alert.acked_by} at {_when(alert.acked_at)}")
    for d in alert.deliveries:
        state = f"{d.channel}: {d.state}, {d.attempts} attempt(s)"
        if d.sent_at is not None:
            state += f", sent {_when(d.sent_at)}"
        if d.last_error:
            state += f", last error: {inert(d.last_error)}"
        lines.append(state)
    if not alert.deliveries:
        lines.append("no channel notified (recorded only)")
    return "\n".join(lines)


class AlertsScreen(SquScreen):
    crumbs: ClassVar[list[str]] = ["alerts"]
    BINDINGS: ClassVar[list[BindingType]] = bindings("alerts.ack", "alerts.all", "alerts.reload")

    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[tuple[str, Alert]] = []
        self.unacked = 0
        self.down: list[str] = []
        self.show_all = False

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        table: DataTable[str | Text] = DataTable(id="alerts", cursor_type="row")
        yield table
        yield Static(id="alert", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        super().on_mount()
        table = self.query_one("#alerts", DataTable)
        for label, width in (
            ("Agent", 10), ("Job", 16), ("Kind", 17), ("When", 19), ("Ack", 8), ("Delivery", 18),
        ):  # fmt: skip
            table.add_column(label, width=width, key=label)
        self.reload()

    def refresh_data(self) -> None:
        super().refresh_data()
        self.reload()

    def action_reload(self) -> None:
        self.reload()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        self.reload()

    @work(exclusive=True, group="alerts-load", exit_on_error=False)
    async def reload(self) -> None:
        """Ask every usable agent for its alerts, then redraw."""
        found: list[tuple[str, Alert]] = []
        unacked = 0
        down = []
        for state in self.squ.agents():
            if not state.link.is_usable:
                down.append(state.name)
                continue
            got = await self.squ.call_agent(
                f"alerts on {state.name}",
                self.squ.fleet.list_alerts(state.name, unacked=not self.show_all),
            )
            if got is not None:
                found += [(state.name, a) for a in got[0]]
                unacked += got[1]
        found.sort(key=lambda pair: -pair[1].created_at)
        self.unacked, self.down = unacked, down
        for state in self.squ.agents():
            if state.name not in down:
                self.squ.count_alerts(state.name)
        self.show(found)

    def show(self, alerts: list[tuple[str, Alert]]) -> None:
        """Draw ``alerts`` (agent, alert), keeping the cursor on the same alert."""
        table = self.query_one("#alerts", DataTable)
        keep = self.selected()
        self.alerts = alerts
        table.clear()
        for agent, alert in alerts:
            table.add_row(
                agent,
                alert.job,
                alert.kind.value,
                _when(alert.created_at),
                alert.acked_by if alert.acked_at is not None else "",
                ", ".join(f"{d.channel} {d.state}" for d in alert.deliveries) or "-",
                key=f"{alert.id}@{agent}",
            )
        if keep is not None:
            for index, (agent, alert) in enumerate(alerts):
                if (agent, alert.id) == (keep[0], keep[1].id):
                    table.move_cursor(row=index)
        self.show_alert()

    def selected(self) -> tuple[str, Alert] | None:
        table = self.query_one("#alerts", DataTable)
        if not self.alerts or table.cursor_row < 0 or table.cursor_row >= len(self.alerts):
            return None
        return self.alerts[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_alert()

    def show_alert(self) -> None:
        pane = self.query_one("#alert", Static)
        head = f"{self.unacked} unacknowledged"
        for line in self.quiet_agents():
            head += f"\n{line}"
        chosen = self.selected()
        if chosen is None:
            which = "alerts" if self.show_all else "unacknowledged alerts"
            pane.update(Text(f"{head}\nno {which} on the agents that are up"))
            return
        pane.update(Text(f"{head}\n\n{alert_text(chosen[1], chosen[0])}"))

    def quiet_agents(self) -> list[str]:
        """One line per agent that is not answering: since when, why, and its overdue jobs."""
        lines = []
        now = self.squ.now()
        for state in self.squ.agents():
            if state.name not in self.down:
                continue
            since = state.last_seen or state.since or now
            why = f" ({inert(state.error)})" if state.error else ""
            line = f"{state.name} not answering since {_when(since)}{why}"
            jobs = [s.record.job for s in self.squ.mirror.jobs(agent=state.name)]
            late = overdue_jobs(jobs, since=since, now=now, agent_zone=state.timezone)
            if late:
                shown = ", ".join(f"{name} (due {_when(at)})" for name, at in late[:5])
                more = f" and {len(late) - 5} more" if len(late) > 5 else ""
                line += f"; overdue: {shown}{more}"
            lines.append(line)
        return lines

    def action_ack(self) -> None:
        chosen = self.selected()
        if chosen is not None and chosen[1].acked_at is None:
            self.ack(*chosen)

    @work(group="actions", exit_on_error=False)
    async def ack(self, agent: str, alert: Alert) -> None:
        done = await self.squ.call_agent(
            f"acknowledge {alert.id} on {agent}", self.squ.fleet.ack_alert(agent, alert.id)
        )
        if done is not None:
            self.notify(f"{alert.job} {alert.kind.value} on {agent} acknowledged", title="ack")
        self.reload()
