"""The TUI over a real agent and the real network fleet: see, trigger, read the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from console.app import SquApp
from console.config import load_inventory
from console.fleet.fleet import Fleet
from console.fleet.mirror import Mirror, RunFilter
from console.fleet.source import LinkState
from console.keys import load_operator_key
from console.screens.jobs import JobsScreen
from console.screens.logs import LogScreen
from console.screens.trigger import TriggerDialog
from console.theme import TuiConfig
from console.widgets.log_view import LogView
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


async def test_tui_triggers_a_job_on_a_real_agent_and_shows_its_log(tmp_path: Path) -> None:
    """Over a real agent: it shows up, its job is listed, t runs it, the log shows its output."""
    _skip_if_missing()
    wire = Wire(tmp_path)
    mirror = Mirror.open(tmp_path / "mirror.db")
    try:
        proc = wire.agent("db1")
        proc.write_jobs("demo.toml", '[job.hello]\ncommand = "echo hello from db1"\n')
        proc.hup()
        inventory = load_inventory(wire.config)
        fleet = Fleet(inventory, key=load_operator_key(inventory, wire.config), mirror=mirror)
        app = SquApp(mirror, fleet, config=TuiConfig(theme="squ-dark", cursor_blink=False))
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: any(a.link is LinkState.UP for a in app.agents()), 30)
            await until(pilot, lambda: bool(mirror.jobs(name="hello")), 30)
            await until(pilot, lambda: isinstance(app.screen, JobsScreen), 5)
            jobs = app.screen
            assert isinstance(jobs, JobsScreen)
            await until(pilot, lambda: "hello" in jobs.summaries, 5)
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TriggerDialog), 5)
            await pilot.click("#run")

            def finished() -> bool:
                runs = mirror.page_runs(RunFilter(job="hello"), None, 1)
                return bool(runs) and runs[0].execution.status == "success"

            await until(pilot, finished, 30)
            run = mirror.page_runs(RunFilter(job="hello"), None, 1)[0]
            app.run_command(f"logs {run.execution.id} @db1")
            await until(pilot, lambda: isinstance(app.screen, LogScreen), 5)
            await until(pilot, lambda: bool(app.screen.query(LogView)), 5)
            view = app.screen.query_one(LogView)
            await until(pilot, lambda: "hello from db1" in view.shown_text(), 30)
    finally:
        mirror.close()
        wire.cleanup()
