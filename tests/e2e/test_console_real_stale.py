"""The TUI when a real agent is killed mid-session (SIGKILL) and comes back.

Its own pair of agents: this test kills one of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.app import SquApp
from console.fleet.mirror import Mirror, RunFilter
from console.fleet.source import LinkState
from console.screens.confirm import ConfirmDialog
from console.screens.jobs import JobsScreen
from console.screens.logs import LogScreen
from console.screens.runs import RunsScreen
from console.screens.servers import ServersScreen
from console.screens.trigger import TriggerDialog
from console.widgets.fleet_bar import FleetBar
from console.widgets.log_view import LogView
from console.widgets.run_list import RunList
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.consolekit import all_up, open_app, static_text, table_rows, toasts, until
from tests.e2e.wirekit import Wire


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    _skip_if_missing()
    kit = Wire(tmp_path)
    try:
        for name in ("db1", "db2"):
            proc = kit.agent(name)
            proc.write_jobs("hello.toml", f'[job.hello]\ncommand = "echo hello from {name}"\n')
            proc.hup()
        yield kit
    finally:
        kit.cleanup()


def header(app: SquApp) -> str:
    return str(app.screen.query_one(FleetBar).render())


async def test_a_killed_agent_turns_stale_fails_actions_fast_and_recovers(
    wire: Wire, tmp_path: Path
) -> None:
    """SIGKILL db2: stale in Servers, header and Runs; an action fails fast; restart recovers."""
    mirror = Mirror.open(tmp_path / "mirror.db")
    try:
        app = open_app(wire, mirror)
        async with app.run_test(size=(120, 40)) as pilot:
            await all_up(pilot, app)
            await until(pilot, lambda: len(mirror.jobs(name="hello")) == 2, what="hello mirrored")
            first = await app.fleet.trigger("hello", "db2", {})

            def status(eid: str) -> str:
                run = mirror.get_run("db2", eid)
                return str(run.execution.status) if run else ""

            await until(pilot, lambda: status(first) == "success", what="db2's first run")
            await pilot.press("1")
            await until(pilot, lambda: isinstance(app.screen, ServersScreen))
            assert "agents 2/2" in app.summary_text().plain

            wire.agents["db2"].kill9()
            state = lambda: app.agent("db2")  # noqa: E731
            await until(pilot, lambda: state() and state().link is not LinkState.UP, 10)
            assert app.agent("db1").link is LinkState.UP  # type: ignore[union-attr]
            await until(pilot, lambda: "agents 1/2" in app.summary_text().plain)
            await until(pilot, lambda: "agents 1/2" in header(app), what="the header 1/2")
            row = table_rows(app, "#servers")["db2"]
            assert "up" not in row.split()[1:2]
            assert state().is_stale  # type: ignore[union-attr]

            # Its last-known runs are still listed, marked stale.
            await pilot.press("colon", *"runs job=hello @db2", "enter")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))
            run_list = app.screen.query_one(RunList)
            await until(pilot, lambda: run_list.selected is not None)
            assert run_list.selected.execution.id == first  # type: ignore[union-attr]
            assert "db2" in run_list.stale_agents
            line = run_list.render_line(1)  # 0 is the column titles
            assert first[-8:] in line.text
            assert all(seg.style is not None and seg.style.italic for seg in line)
            # CONSOLE.md: stale is a word as well as a style.
            assert "db2 stale" in static_text(app, "#runs-filter")

            # An action on it fails with a clear toast at once (no hang).
            await pilot.press("R")
            await until(pilot, lambda: isinstance(app.screen, ConfirmDialog))
            started = time.monotonic()
            await pilot.click("#confirm")
            await until(
                pilot,
                lambda: any("agent db2 is" in t for t in toasts(app)),
                5,
                "the unavailable toast",
            )
            assert time.monotonic() - started < 3.0
            assert mirror.count_runs(RunFilter(job="hello", agent="db2")) == 1

            # The trigger dialog offers db2 marked and unticked; Run goes to db1 only.
            await pilot.press("2")
            await until(pilot, lambda: isinstance(app.screen, JobsScreen))
            await until(pilot, lambda: "hello" in app.screen.summaries)  # type: ignore[attr-defined]
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TriggerDialog))
            dialog = app.screen
            assert isinstance(dialog, TriggerDialog)
            assert dialog.selected_agents() == ("db1",)
            assert str(dialog.query_one("#command").render()) == "$ squ run hello --on db1"
            await pilot.click("#run")
            await until(
                pilot,
                lambda: mirror.count_runs(RunFilter(job="hello", agent="db1")) == 1,
                what="the run on db1",
            )
            assert mirror.count_runs(RunFilter(job="hello", agent="db2")) == 1
            await pilot.press("3")
            await until(pilot, lambda: isinstance(app.screen, RunsScreen))

            # Restarted on the same port, the link comes back by itself; new runs appear.
            wire.agents["db2"].start()
            await until(pilot, lambda: state().link is LinkState.UP, 30, "db2 back up")  # type: ignore[union-attr]
            await until(pilot, lambda: "db2" not in run_list.stale_agents, 5)
            assert "agents 2/2" in app.summary_text().plain
            second = await app.fleet.trigger("hello", "db2", {})
            await until(pilot, lambda: status(second) == "success", what="db2's new run")
            await until(pilot, lambda: run_list.total == 2, what="the new run listed")
    finally:
        mirror.close()


async def test_a_followed_log_says_the_agent_is_gone_and_resumes_without_gaps(
    wire: Wire, tmp_path: Path
) -> None:
    """A followed run's agent SIGKILLed: the info line says so; restarted, lines go on, once."""
    proc = wire.agents["db2"]
    proc.write_jobs(
        "ticker.toml",
        '[job.ticker]\ncommand = "for i in $(seq 1 150); do echo line $i; sleep 0.2; done"\n',
    )
    proc.hup()
    mirror = Mirror.open(tmp_path / "mirror.db")
    try:
        app = open_app(wire, mirror)
        async with app.run_test(size=(120, 40)) as pilot:
            await all_up(pilot, app)
            await until(pilot, lambda: mirror.jobs(name="ticker"), what="ticker mirrored")
            exec_id = await app.fleet.trigger("ticker", "db2", {})
            await until(pilot, lambda: mirror.get_run("db2", exec_id), what="the run mirrored")
            await pilot.press("colon", *f"logs {exec_id} @db2", "enter")
            await until(pilot, lambda: isinstance(app.screen, LogScreen))
            view = app.screen.query_one(LogView)
            await until(pilot, lambda: "line 3" in view.shown_text(), what="the first lines")

            proc.kill9()
            await until(
                pilot,
                lambda: "db2 down" in static_text(app, "#log-info"),
                10,
                "the log's info line naming the agent down",
            )
            proc.start()
            await until(pilot, lambda: app.agent("db2").link is LinkState.UP, 30)  # type: ignore[union-attr]
            shown = len(view.shown_text())
            await until(pilot, lambda: len(view.shown_text()) >= shown + 5, what="lines again")
            await until(
                pilot, lambda: "db2 down" not in static_text(app, "#log-info"), 5, "info line up"
            )
            lines = [ln for ln in view.shown_text() if ln.startswith("line ")]
            numbers = [int(ln.split()[1]) for ln in lines]
            assert numbers == list(range(1, len(numbers) + 1))  # each once, in order
            await app.fleet.cancel("db2", exec_id)
    finally:
        mirror.close()
