"""Snapshots of the console's views over fixed data, a fixed clock and a fixed theme.

Run ``pytest tests/console/test_snapshots.py --snapshot-update`` after a
deliberate change of looks, and look at the report before committing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.widgets.log_view import LogView
from tests.console import fixed

SMALL = (80, 24)  # CONSOLE.md: works at 80x24 over SSH
LARGE = (120, 40)


async def _until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_jobs_view(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """Jobs: schedule, next run in the job's zone, last status, success rate, sparkline."""
    assert snap_compare(fixed.make_app(tmp_path), press=["2"], terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_servers_view_marks_stale_agent(
    snap_compare, tmp_path: Path, size: tuple[int, int]
) -> None:
    """Servers: link states in words; the down agent's last-known metrics marked stale."""
    assert snap_compare(fixed.make_app(tmp_path), press=["1"], terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_runs_view(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """Runs: newest first, status as a word and a colour, one cursor row."""
    assert snap_compare(fixed.make_app(tmp_path), press=["3", "down"], terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_job_detail(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """Job detail opens on the overview tab."""
    assert snap_compare(fixed.make_app(tmp_path), press=["2", "enter"], terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_log_viewer(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """The log viewer: stderr marked, the cap's gap marked, hostile bytes inert."""

    async def open_log(pilot: Pilot[None]) -> None:
        await pilot.press("colon", *f"logs {fixed.last_backup_id()}", "enter")
        await _until(pilot, lambda: bool(pilot.app.screen.query(LogView)))
        view = pilot.app.screen.query_one(LogView)
        await _until(pilot, lambda: len(view.shown_text()) == 5)

    assert snap_compare(fixed.make_app(tmp_path), run_before=open_log, terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_trigger_dialog(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """The trigger dialog: targets, typed parameters, the equivalent command, Cancel focused."""
    assert snap_compare(fixed.make_app(tmp_path), press=["2", "t"], terminal_size=size)


@pytest.mark.parametrize("size", [SMALL, LARGE], ids=["80x24", "120x40"])
def test_job_editor(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    """The job editor: one row per field, the cron in words with its next times."""

    async def open_editor(pilot: Pilot[None]) -> None:
        await pilot.press("2", "e")
        # The form validates after a short pause in typing: wait for its verdict.
        await _until(pilot, lambda: getattr(pilot.app.screen, "job", None) is not None)

    assert snap_compare(fixed.make_app(tmp_path), run_before=open_editor, terminal_size=size)


def test_jobs_view_light_ansi_theme(snap_compare, tmp_path: Path) -> None:
    """The ANSI light theme keeps every status readable on a light terminal."""
    app = fixed.make_app(tmp_path, theme="ansi-light")
    assert snap_compare(app, press=["2"], terminal_size=SMALL)


def test_jobs_view_no_color(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With NO_COLOR the statuses still read as words."""
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(fixed.make_app(tmp_path), press=["2"], terminal_size=SMALL)
