"""The TUI over real agents, for the ``test_console_real_*`` Pilot tests.

``open_app(wire, mirror)`` builds a ``SquApp`` on the real network ``Fleet`` of a
``Wire`` (real agents on 127.0.0.1, the operator's real key) with a fast
reconnect, so a restarted agent is back within a second or two. ``until``
lets the app run until a condition holds, with a deadline (never sleep-and-hope).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.app import SquApp
from console.config import load_inventory
from console.fleet.fleet import Fleet
from console.fleet.link import Backoff
from console.fleet.mirror import Mirror
from console.fleet.source import LinkState
from console.keys import load_operator_key
from console.theme import TuiConfig
from tests.e2e.wirekit import Wire

# A killed agent comes back on the same port; the link retries every 0.2-1 s.
FAST = Backoff(initial_s=0.2, max_s=1.0)


def open_app(wire: Wire, mirror: Mirror) -> SquApp:
    """The console on every agent of ``wire``'s fleet.toml, writing into ``mirror``."""
    inventory = load_inventory(wire.config)
    fleet = Fleet(
        inventory, key=load_operator_key(inventory, wire.config), mirror=mirror, backoff=FAST
    )
    return SquApp(mirror, fleet, config=TuiConfig(theme="squ-dark", cursor_blink=False))


async def until(
    pilot: Pilot[None], condition: Callable[[], object], timeout_s: float = 30.0, what: str = ""
) -> None:
    """Let the app run until ``condition`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout_s} s: {what or condition}")
        await pilot.pause(0.05)


async def all_up(pilot: Pilot[None], app: SquApp, timeout_s: float = 30.0) -> None:
    await until(
        pilot,
        lambda: all(a.link is LinkState.UP for a in app.agents()),
        timeout_s,
        "every agent's link up",
    )


def toasts(app: SquApp) -> list[str]:
    return [n.message for n in app._notifications]


def static_text(app: SquApp, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)
    return str(widget.render())


def table_rows(app: SquApp, selector: str) -> dict[str, str]:
    """Each row of a DataTable as text, by row key."""
    table: DataTable[object] = app.screen.query_one(selector, DataTable)
    out = {}
    for index in range(table.row_count):
        key = table.coordinate_to_cell_key((index, 0)).row_key.value  # type: ignore[arg-type]
        out[str(key)] = " ".join(str(cell) for cell in table.get_row_at(index))
    return out
