"""Pilot tests of the Alerts view (key 7) over fixed data (StaticFleet)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import msgspec
import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.app import SquApp
from console.screens.alerts import AlertsScreen
from console.theme import TuiConfig
from shared.alerts import Alert, Delivery
from shared.enums import AlertKind, ExecutionStatus
from tests.console import fixed

ALERT = Alert(
    id="01JD3N2A7C9E1G3J5K7M9P1R3X.retries_exhausted",
    kind=AlertKind.RETRIES_EXHAUSTED,
    job="backup",
    server="db1",
    execution_id="01JD3N2A7C9E1G3J5K7M9P1R3X",
    run_id="01JD3N2A7C9E1G3J5K7M9P1R3A",
    status=ExecutionStatus.FAILED,
    created_at=fixed.NOW - 30,
    attempt=3,
    attempts=3,
    exit_code=2,
    reason="disk [bold]not markup[/bold]\x1b]0;pwned\x07",
    deliveries=(
        Delivery(channel="hook", state="sent", attempts=1, sent_at=fixed.NOW - 29),
        Delivery(channel="mail", state="pending", attempts=2, last_error="connection refused"),
    ),
)


def make_app(tmp_path: Path) -> SquApp:
    fleet = fixed.fleet()
    fleet.alerts = {fleet.states[0].name: [ALERT]}
    mirror = fixed.build_mirror(tmp_path / "mirror.db")
    config = TuiConfig(tz=UTC, cursor_blink=False)
    return SquApp(mirror, fleet, clock=lambda: fixed.NOW, config=config)


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def rows(app: SquApp) -> int:
    return app.screen.query_one("#alerts", DataTable).row_count


def pane(app: SquApp) -> str:
    return str(app.screen.query_one("#alert", Static).render())


async def test_key_7_lists_alerts_with_their_deliveries(tmp_path: Path) -> None:
    """7 opens Alerts: the alert in words, attempt n of m, each channel's delivery, inert text."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and rows(app) == 1)
        shown = pane(app)
        assert "1 unacknowledged" in shown and "attempt 3 of 3" in shown
        assert "mail: pending, 2 attempt(s), last error: connection refused" in shown
        assert "[bold]not markup[/bold]" in shown and "\x1b" not in shown


async def test_a_acknowledges_and_the_alert_leaves_the_list(tmp_path: Path) -> None:
    """a acknowledges the highlighted alert on its agent; u shows it again, acknowledged."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and rows(app) == 1)
        await pilot.press("a")
        await until(pilot, lambda: rows(app) == 0)
        assert "0 unacknowledged" in pane(app)
        await pilot.press("u")
        await until(pilot, lambda: rows(app) == 1)
        assert "acknowledged by me" in pane(app)


async def test_pushed_alert_is_a_toast_once(tmp_path: Path) -> None:
    """A pushed alert is toasted the first time only (later pushes are its deliveries)."""
    from console.fleet.source import AlertRaised

    app = make_app(tmp_path)
    fresh = msgspec.structs.replace(ALERT, deliveries=())
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(AlertRaised("db1", fresh))
        app.post_message(AlertRaised("db1", ALERT))
        await until(pilot, lambda: len(app._notifications) >= 1)
        await pilot.pause(0.1)
        toasts = [n for n in app._notifications if n.title == "alert on db1"]
        assert len(toasts) == 1
        assert "backup on db1 failed (exit 2) on its last attempt (3 of 3)" in toasts[0].message
        assert "\x1b" not in toasts[0].message


async def test_header_counts_unacknowledged_alerts(tmp_path: Path) -> None:
    """The header shows the fleet's unacknowledged alerts, and drops them once acknowledged."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: "alerts 1" in app.summary_text().plain)
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and rows(app) == 1)
        await pilot.press("a")
        await until(pilot, lambda: "alerts" not in app.summary_text().plain)


def test_overdue_jobs_are_the_ticks_since_the_agent_went_quiet() -> None:
    """A quiet agent's enabled cron jobs with a tick since it went quiet are overdue."""
    from console.screens.alerts import overdue_jobs
    from shared.models import Job

    hourly = Job(name="hourly", command="true", cron="0 * * * *")
    nightly = Job(name="nightly", command="true", cron="0 3 * * *")
    paused = Job(name="paused", command="true", cron="* * * * *", enabled=False)
    since = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
    late = overdue_jobs([hourly, nightly, paused], since=since, now=since + 3600, agent_zone="UTC")
    assert late == [("hourly", 1_790_002_800.0)]


async def test_pane_names_quiet_agents_and_their_overdue_jobs(tmp_path: Path) -> None:
    """The console reports what no agent can: web2 is down since T, rotate-logs is overdue."""
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("7")
        await until(pilot, lambda: isinstance(app.screen, AlertsScreen) and rows(app) == 1)
        shown = pane(app)
        assert "web2 not answering since" in shown and "(connection refused)" in shown
        assert "overdue: rotate-logs (due" in shown


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_alerts_view_snapshot(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """Alerts: the alert in words with its deliveries; agent text shown inert."""

    async def loaded(pilot: Pilot[None]) -> None:
        await pilot.press("7")
        await until(pilot, lambda: rows(pilot.app) == 1)  # type: ignore[arg-type]

    assert snap_compare(make_app(tmp_path), run_before=loaded, terminal_size=size)
