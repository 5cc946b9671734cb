"""Runs: the rows of an agent that is not up are marked stale in words, not only in style."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Static

from console.screens.runs import RunsScreen
from tests.console import fixed


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


async def test_runs_filter_line_names_the_stale_agents(tmp_path: Path) -> None:
    """Regression: Runs said nothing in words about stale rows; the filter line names them."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("3")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        line = str(app.screen.query_one("#runs-filter", Static).render())
        assert "edge1, web2 stale (last known)" in line


async def test_runs_filtered_to_a_live_agent_names_no_stale_agent(tmp_path: Path) -> None:
    """With @db1 (up), the filter line does not mention the other agents' staleness."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("colon", *"runs @db1", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await until(
            pilot, lambda: "agent=db1" in str(app.screen.query_one("#runs-filter", Static).render())
        )
        assert "stale" not in str(app.screen.query_one("#runs-filter", Static).render())
