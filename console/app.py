"""SquApp: the console TUI over a mirror and a fleet.

``SquApp(mirror, fleet, clock=..., config=...)`` is all a test needs: fixed
data in a mirror file, a ``StaticFleet`` and a fixed clock give the same
screen every time. ``run_tui(mirror_path, fleet)`` is the entry the ``squ``
CLI and ``squ demo`` call.

Never blocks: the fleet runs in a worker (its links in their own tasks), the
UI thread reads only the local mirror, and every action on an agent runs in a
worker with a timeout and ends in a toast. Messages from the fleet only mark
data dirty; a timer redraws the visible screen at most every ``refresh_s``.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from rich.text import Text
from textual import events, work
from textual.app import App, SuspendNotSupported
from textual.binding import BindingType
from textual.command import Provider
from textual.notifications import SeverityLevel
from textual.screen import Screen

from console.bindings import bindings
from console.cmdline import Command, parse_command
from console.fleet.mirror import Mirror, StoredRun
from console.fleet.source import (
    AgentState,
    AgentStateChanged,
    AlertRaised,
    ExecutionsChanged,
    FleetSource,
    JobsChanged,
    LinkState,
    LogChunk,
)
from console.palette import SquCommands
from console.screens.trigger import TriggerRequest
from console.theme import SQU_DARK, SQU_LIGHT, THEMES, TuiConfig
from shared.errors import SquError
from shared.textsafe import inert

__all__ = ["SquApp", "run_tui"]

T = TypeVar("T")

# Key 4 stays free for the DAG view (its issue adds it).
VIEWS = ("servers", "jobs", "runs", "approvals", "audit", "alerts")


class SquApp(App[None]):
    """The console. Views are modes, so each keeps its own screen stack (enter in, esc out)."""

    # Absolute, so a subclass defined elsewhere (benchmarks, embedders) finds it too.
    CSS_PATH = Path(__file__).with_name("console.tcss")
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = App.COMMANDS | {
        SquCommands
    }
    TITLE = "squ"
    BINDINGS: ClassVar[list[BindingType]] = bindings(
        "app.servers",
        "app.jobs",
        "app.runs",
        "app.approvals",
        "app.audit",
        "app.alerts",
        "app.command",
        "app.help",
        "app.quit",
    )

    def __init__(
        self,
        mirror: Mirror,
        fleet: FleetSource,
        *,
        clock: Callable[[], float] = time.time,
        config: TuiConfig | None = None,
    ) -> None:
        start = (config or TuiConfig()).start_view
        # The first view is the app's default mode, so start-up builds and styles only
        # that screen: no blank default screen first, then a switch that restyles the
        # app a second time (issue 8: first paint over a 1M-row mirror). The other views
        # are built the first time they are shown.
        self.DEFAULT_MODE = start if start in VIEWS else "jobs"  # type: ignore[misc]
        super().__init__()
        self.mirror = mirror
        self.fleet = fleet
        self.clock = clock
        self.config = config or TuiConfig()
        self.tz: tzinfo = self.config.tz or datetime.now().astimezone().tzinfo or UTC
        self._dirty = False
        self._agents: dict[str, AgentState] = {}
        self._alerts_seen: set[tuple[str, str]] = set()  # (agent, alert id) already toasted
        self.unacked_alerts: dict[str, int] = {}  # per agent, for the header (docs/alerts.md)
        self._counting: set[str] = set()
        self._recount: set[str] = set()
        self.register_theme(SQU_DARK)
        self.register_theme(SQU_LIGHT)
        self.theme = self.config.theme
        if self.config.keymap:
            self.set_keymap(self.config.keymap)

        # -- start-up ------------------------------------------------------------------

        self._agents = {a.name: a for a in self.fleet.agents()}
        for view in VIEWS:
            self.add_mode(view, _view_screen(view))

    def on_mount(self) -> None:
        self.run_worker(self._run_fleet(), group="links", exit_on_error=False)
        self.set_interval(self.config.refresh_s, self._redraw_if_dirty)

    async def _run_fleet(self) -> None:
        try:
            await self.fleet.run(self.post_message)
        except SquError as exc:
            self.notify(exc.message, title="fleet stopped", severity="error", timeout=30)
        except Exception as exc:  # the top of a long-lived task: say so, keep the UI usable
            self.log.error("fleet stopped", exc)
            self.notify(
                f"{type(exc).__name__}: {exc}; the views show the mirror as it was",
                title="fleet stopped",
                severity="error",
                timeout=30,
            )

    # -- what the views read ------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def agents(self) -> list[AgentState]:
        """The last known state of every agent (no I/O)."""
        return sorted(self._agents.values(), key=lambda a: a.name)

    def agent(self, name: str) -> AgentState | None:
        return self._agents.get(name)

    def stale_agents(self) -> frozenset[str]:
        return frozenset(a.name for a in self._agents.values() if a.is_stale)

    def summary_text(self) -> Text:
        """Header summary: agents up/total, failing jobs, clock (CONSOLE.md "At a glance")."""
        agents = list(self._agents.values())
        up = sum(1 for a in agents if a.link is LinkState.UP)
        failing = sum(
            1 for s in self.mirror.job_summaries() if s.last_status in ("failed", "timeout", "lost")
        )
        clock = datetime.fromtimestamp(self.now(), self.tz).strftime("%H:%M:%S %Z")
        text = Text(no_wrap=True)
        text.append(f"agents {up}/{len(agents)}", style="bold red" if up < len(agents) else "")
        text.append(" · ")
        text.append(f"failing {failing}", style="bold red" if failing else "")
        unacked = sum(self.unacked_alerts.values())
        if unacked:
            text.append(" · ")
            text.append(f"alerts {unacked}", style="bold red")
        text.append(f" · {clock}")
        return text

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if not self.config.cursor_blink and hasattr(event.widget, "cursor_blink"):
            event.widget.cursor_blink = False

    # -- messages from the fleet: mark dirty, redraw on the timer ----------------

    def on_executions_changed(self, message: ExecutionsChanged) -> None:
        self._dirty = True

    def on_jobs_changed(self, message: JobsChanged) -> None:
        self._dirty = True

    def on_agent_state_changed(self, message: AgentStateChanged) -> None:
        was = self._agents.get(message.agent)
        self._agents = {a.name: a for a in self.fleet.agents()}
        now = self._agents.get(message.agent)
        if (
            now is not None
            and now.link is LinkState.UP
            and (was is None or was.link is not now.link)
        ):
            self.count_alerts(message.agent)
        self._dirty = True

    def count_alerts(self, agent: str) -> None:
        """Ask ``agent`` how many alerts nobody acknowledged (header); one query in flight each,
        and one more after it if asked meanwhile (a burst of pushes costs two queries)."""
        if agent in self._counting:
            self._recount.add(agent)
            return
        self._counting.add(agent)
        self.run_worker(self._count_alerts(agent), group="alerts-count", exit_on_error=False)

    async def _count_alerts(self, agent: str) -> None:
        try:
            while True:
                self._recount.discard(agent)
                try:
                    _, unacked = await self.fleet.list_alerts(agent, unacked=True)
                except SquError:
                    return  # an agent without alerts, or gone again: its count stays
                if self.unacked_alerts.get(agent, 0) != unacked:
                    self.unacked_alerts[agent] = unacked
                    self._dirty = True
                if agent not in self._recount:
                    return
        finally:
            self._counting.discard(agent)

    def on_alert_raised(self, message: AlertRaised) -> None:
        """A toast the first time an unacknowledged alert is seen (docs/alerts.md)."""
        from shared.alerts import summary

        self.count_alerts(message.agent)
        key = (message.agent, message.alert.id)
        if key in self._alerts_seen or message.alert.acked_at is not None:
            return
        self._alerts_seen.add(key)
        # Reasons carry process text: inert, never markup.
        self.notify(
            inert(summary(message.alert)),
            title=f"alert on {message.agent}",
            severity="warning",
            markup=False,
        )

    def on_log_chunk(self, message: LogChunk) -> None:
        """Route live output to every open log view of that execution."""
        from console.screens.logs import LogScreen

        for stack in self._screen_stacks.values():
            for screen in stack:
                if (
                    isinstance(screen, LogScreen)
                    and screen.exec_id == message.exec_id
                    and screen.agent == message.agent
                ):
                    screen.receive_chunk(message)

    def _redraw_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        self.refresh_screen()

    def refresh_screen(self) -> None:
        """Redraw the visible view from the mirror now (others redraw when shown)."""
        from console.screens.base import SquScreen

        for screen in reversed(self.screen_stack):
            if isinstance(screen, SquScreen):
                # A screen just pushed has no table columns until its on_mount has run,
                # and one being torn down (app exit, pop) is losing its widgets.
                closing = self._closing or screen._closing
                if screen.is_mounted and not closing:
                    screen.refresh_data()
                break

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Toasts carry agent text (error messages, names): always inert, never markup."""
        super().notify(
            inert(message), title=inert(title), severity=severity, timeout=timeout, markup=False
        )

    # -- actions on agents: in a worker, with a timeout, ending in a toast ---------

    async def call_agent(self, what: str, action: Awaitable[T]) -> T | None:
        """Await ``action`` with the configured timeout; a failure becomes an error toast."""
        try:
            return await asyncio.wait_for(action, timeout=self.config.action_timeout_s)
        except SquError as exc:
            self.notify(exc.message, title=f"{what} failed", severity="error", timeout=10)
        except TimeoutError:
            self.notify(
                f"no answer after {self.config.action_timeout_s:.0f}s",
                title=f"{what} failed",
                severity="error",
                timeout=10,
            )
        return None

    @work(group="actions", exit_on_error=False)
    async def start_runs(self, request: TriggerRequest) -> None:
        """Trigger ``request`` on all its agents at once; one toast per agent as it answers.

        Side by side, not in turn: triggering on 1,000 agents one after another took
        1,000 round trips (issue 8: fan-out p99 < 1 s). Each agent has its own timeout.
        """

        async def one(agent: str) -> None:
            exec_id = await self.call_agent(
                f"run {request.job} on {agent}",
                self.fleet.trigger(request.job, agent, dict(request.params)),
            )
            if exec_id is not None:
                self.notify(f"{request.job} started on {agent}: {exec_id}", title="run")

        await asyncio.gather(*(one(agent) for agent in request.agents))

    # -- navigation -----------------------------------------------------------------

    def action_view(self, name: str) -> None:
        if name in VIEWS:
            self.switch_mode(name)

    def open(self, screen: Screen[Any]) -> None:
        """Drill into ``screen`` on top of the current view's stack."""
        self.push_screen(screen)

    def action_help(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_command_line(self) -> None:
        from console.screens.prompt import Prompt

        def done(text: str | None) -> None:
            if text:
                self.run_command(text)

        self.push_screen(Prompt(":", placeholder="runs job=NAME status=failed since=24h"), done)

    def run_command(self, text: str) -> None:
        """Carry out a ``:`` command; a mistake becomes a toast naming it."""
        try:
            command = parse_command(text, now=self.now())
            self._dispatch(command)
        except SquError as exc:
            self.notify(exc.message, title="command", severity="error")

    def _dispatch(self, command: Command) -> None:
        from console.screens.job_detail import JobDetailScreen
        from console.screens.job_editor import JobEditorScreen
        from console.screens.logs import LogScreen
        from console.screens.runs import RunsScreen
        from console.screens.servers import ServerDetailScreen

        if command.name == "q":
            self.exit()
        elif command.name == "servers":
            self.switch_mode("servers")
        elif command.name == "jobs":
            if command.agent:
                self._require_agent(command.agent)
                self.switch_mode("servers")
                self.push_screen(ServerDetailScreen(command.agent))
            else:
                self.switch_mode(
                    self.config.start_view if self.config.start_view in VIEWS else "jobs"
                )
        elif command.name == "runs":
            self.switch_mode("runs")
            screen = self.screen
            if isinstance(screen, RunsScreen):
                screen.apply_filters(command.filters)
        elif command.name in ("job", "edit"):
            if not self.mirror.jobs(name=command.argument):
                raise SquError(f"no job named {command.argument!r} in the mirror")
            cls = JobDetailScreen if command.name == "job" else JobEditorScreen
            self.push_screen(cls(command.argument))
        elif command.name == "new":
            self.push_screen(JobEditorScreen(None))
        elif command.name == "logs":
            run = self._find_run(command.argument, command.agent)
            self.push_screen(LogScreen(run.agent, run.execution.id))
        elif command.name == "ssh":
            self.ssh_to(command.argument)
        elif command.name == "theme":
            if command.argument not in THEMES:
                raise SquError(f"theme {command.argument!r} is not one of {', '.join(THEMES)}")
            self.theme = command.argument

    def ssh_to(self, agent: str) -> None:
        """Hand the terminal to ``ssh HOST`` (the agent's host); the TUI resumes on exit."""
        self._require_agent(agent)
        host = urlsplit(self._agents[agent].url).hostname
        if not host:
            raise SquError(f"agent {agent} has no host in its URL")
        try:
            with self.suspend():
                # The operator's own ssh, with their config and agent; argv, never a shell.
                subprocess.run(["ssh", "--", host], check=False)
        except SuspendNotSupported:
            raise SquError("this terminal cannot be handed over (no suspend here)") from None
        except FileNotFoundError:
            raise SquError("no ssh command on this machine") from None

    def _require_agent(self, name: str) -> None:
        if name not in self._agents:
            known = ", ".join(sorted(self._agents)) or "none"
            raise SquError(f"no agent named {name!r} (known: {known})")

    def _find_run(self, text: str, agent: str) -> StoredRun:
        """The one run whose id is or starts with ``text`` (on ``agent`` if given)."""
        found = [
            r
            for r in self.mirror.find_runs(text.upper(), limit=20)
            if r.agent == agent or not agent
        ]
        exact = [r for r in found if r.execution.id == text.upper()]
        found = exact or found
        if not found:
            raise SquError(f"no execution {text!r} in the mirror")
        if len({r.execution.id for r in found}) > 1:
            raise SquError(f"{text!r} matches several executions: type more of the id")
        if len(found) > 1:
            # Scheduled ids derive from (job, tick): the same job on two agents shares one.
            agents = ", ".join(sorted(r.agent for r in found))
            raise SquError(f"{text!r} ran on {agents}: add @AGENT to choose")
        return found[0]


def _view_screen(view: str) -> Callable[[], Screen[Any]]:
    """A factory for ``view``'s screen; its module is imported when it is first shown."""

    def make() -> Screen[Any]:
        if view == "servers":
            from console.screens.servers import ServersScreen

            return ServersScreen()
        if view == "jobs":
            from console.screens.jobs import JobsScreen

            return JobsScreen()
        if view == "runs":
            from console.screens.runs import RunsScreen

            return RunsScreen()
        if view == "approvals":
            from console.screens.approvals import ApprovalsScreen

            return ApprovalsScreen()
        if view == "audit":
            from console.screens.audit import AuditScreen

            return AuditScreen()
        from console.screens.alerts import AlertsScreen

        return AlertsScreen()

    return make


def run_tui(
    mirror_path: str | Path | Mirror, fleet: FleetSource, *, config: TuiConfig | None = None
) -> int:
    """Run the TUI until the operator quits, over the mirror at ``mirror_path``.

    Pass the ``Mirror`` the fleet writes to (one connection for both), or a
    path to open one here (closed on exit).
    """
    mirror = mirror_path if isinstance(mirror_path, Mirror) else Mirror.open(mirror_path)
    try:
        SquApp(mirror, fleet, config=config).run()
    finally:
        if mirror is not mirror_path:
            mirror.close()
    return 0
