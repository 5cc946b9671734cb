"""The TUI over the real network fleet: links run inside the app, the UI stays live."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from console.app import SquApp
from console.config import AgentEntry, Inventory
from console.fleet.fleet import Fleet
from console.fleet.link import Backoff
from console.fleet.mirror import Mirror, RunFilter
from console.fleet.source import LinkState
from console.theme import TuiConfig
from shared.enums import Role
from shared.models import Job
from tests.agentd import server_support
from tests.agentd.server_support import StartAgent

start_agent = server_support.start_agent  # the fixture


async def until(pilot: Pilot[None], condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def test_the_app_shows_a_live_agent_and_mirrors_a_trigger(
    start_agent: StartAgent, tmp_path: Path
) -> None:
    """In the app: the link comes up, jobs reach the mirror, a trigger's run is mirrored."""
    agent = await start_agent()
    await agent.ops.put_job(Job(name="backup", command="true"), None, "test")
    inventory = Inventory(
        path=tmp_path / "fleet.toml", agents=(AgentEntry(name="db1", url=agent.url),)
    )
    mirror = Mirror.open(tmp_path / "mirror.db")
    fleet = Fleet(inventory, key=agent.keys[Role.OPERATOR], mirror=mirror, backoff=Backoff())
    app = SquApp(mirror, fleet, config=TuiConfig(cursor_blink=False))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.agent("db1").link is LinkState.UP, "the link up")
            await until(pilot, lambda: mirror.jobs(name="backup"), "the job mirrored")
            exec_id = await fleet.trigger("backup", "db1", {})
            await until(pilot, lambda: mirror.get_run("db1", exec_id), "the run mirrored")
            assert mirror.count_runs(RunFilter(job="backup")) == 1
            # The UI answered throughout: switching views is immediate.
            await pilot.press("3")
            await until(pilot, lambda: app.current_mode == "runs", "the runs view")
    finally:
        mirror.close()


async def test_an_agent_that_is_down_shows_down_with_its_reason(tmp_path: Path) -> None:
    """A dead agent's state in the app says down and why; the app keeps running."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    inventory = Inventory(
        path=tmp_path / "fleet.toml",
        agents=(AgentEntry(name="gone", url="ws://127.0.0.1:9"),),
    )
    mirror = Mirror.open(tmp_path / "mirror.db")
    fleet = Fleet(
        inventory,
        key=ed25519.Ed25519PrivateKey.generate(),
        mirror=mirror,
        backoff=Backoff(initial_s=0.05, max_s=0.2),
    )
    app = SquApp(mirror, fleet, config=TuiConfig(cursor_blink=False))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.agent("gone").link is LinkState.DOWN, "down")
            assert "connection refused" in app.agent("gone").error
            assert app.agent("gone").is_stale
    finally:
        mirror.close()
