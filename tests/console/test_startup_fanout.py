"""Issue 8: start-up builds only the view shown; a trigger goes to every agent at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from console.app import VIEWS, SquApp
from console.fleet.source import AgentState, LinkState, StaticFleet
from console.screens.runs import RunsScreen
from console.screens.trigger import TriggerRequest
from console.theme import TuiConfig
from tests.console.fixed import NOW, build_mirror


class GatedFleet(StaticFleet):
    """A fleet whose trigger answers only once every agent has been asked."""

    def __init__(self, states: list[AgentState]) -> None:
        super().__init__(states=states, now=lambda: NOW)
        self.asked: list[str] = []
        self.all_asked = asyncio.Event()

    async def trigger(self, job: str, agent: str, params: dict[str, str]) -> str:
        self.asked.append(agent)
        if len(self.asked) == len(self.agents()):
            self.all_asked.set()
        await self.all_asked.wait()  # asked in turn, the first would wait forever
        return f"EXEC-{agent}"


def _app(tmp_path: Path, fleet: StaticFleet, start_view: str) -> SquApp:
    config = TuiConfig(theme="squ-dark", start_view=start_view, cursor_blink=False)
    return SquApp(build_mirror(tmp_path / "mirror.db"), fleet, clock=lambda: NOW, config=config)


async def test_start_up_builds_only_the_start_view(tmp_path: Path) -> None:
    """The first frame is the start view's screen; no other view (nor a blank default) is built."""
    app = _app(tmp_path, StaticFleet(states=[], now=lambda: NOW), "runs")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        built = {mode for mode, stack in app._screen_stacks.items() if stack}
        assert built == {"runs"}
        await pilot.press("2")
        built = {mode for mode, stack in app._screen_stacks.items() if stack}
        assert built == {"runs", "jobs"}
        assert set(VIEWS) <= set(app._modes)


async def test_a_trigger_reaches_every_agent_at_once(tmp_path: Path) -> None:
    """Runs on many agents are asked for side by side, one toast per agent (not in turn)."""
    names = [f"agent-{i:02d}" for i in range(20)]
    fleet = GatedFleet([AgentState(name=n, url="", link=LinkState.UP) for n in names])
    app = _app(tmp_path, fleet, "jobs")
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_runs(TriggerRequest(job="backup", agents=tuple(names), params=()))
        deadline = time.monotonic() + 10
        while len(app._notifications) < len(names):
            assert time.monotonic() < deadline, f"{len(fleet.asked)} of {len(names)} asked"
            await pilot.pause(0.05)
        texts = sorted(n.message for n in app._notifications)
        assert texts == sorted(f"backup started on {n}: EXEC-{n}" for n in names)
