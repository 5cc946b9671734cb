"""Regression: the refresh timer must not redraw a screen whose on_mount has not run yet.

Pressing `1` in the demo crashed the console with "More values provided than
there are columns": the 200 ms refresh fired between pushing the Servers screen
and its on_mount adding the table's columns.
"""

from __future__ import annotations

from pathlib import Path

from console.screens.servers import ServersScreen
from tests.console import fixed


async def test_refresh_before_mount_does_not_crash(tmp_path: Path) -> None:
    """refresh_screen() right after pushing a screen skips it until it is mounted."""
    app = fixed.make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = ServersScreen()
        app.push_screen(screen)
        assert not screen.is_mounted
        app.refresh_screen()  # raised ValueError before the fix
        await pilot.pause()
        assert screen.is_mounted
        app.refresh_screen()
        assert app.return_code is None
