"""SquScreen: what every console view shares (header, footer, back, refresh on demand).

The app calls ``refresh_data()`` on the visible screen when the mirror or the
fleet changed (coalesced on a timer, CONSOLE.md "never drown"); a screen that
was hidden refreshes when it comes back. ``refresh_data`` reads the mirror and
``fleet.agents()`` only, so it returns in milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.screen import Screen
from textual.widgets import Footer

from console.bindings import bindings
from console.widgets.fleet_bar import FleetBar

if TYPE_CHECKING:
    from console.app import SquApp

__all__ = ["SquScreen"]


class SquScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("view.back")

    #: Where this screen is, e.g. ["jobs", "backup-db"]; shown in the header.
    crumbs: ClassVar[list[str]] = []

    @property
    def squ(self) -> SquApp:
        from console.app import SquApp

        app = self.app
        assert isinstance(app, SquApp)
        return app

    def breadcrumbs(self) -> list[str]:
        return list(self.crumbs)

    def compose_header(self) -> ComposeResult:
        yield FleetBar()

    def compose_footer(self) -> ComposeResult:
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.update_header()

    def on_screen_resume(self) -> None:
        # The first resume follows mount, which has just read everything.
        if getattr(self, "_was_shown", False):
            self.refresh_data()
        self._was_shown = True

    def refresh_data(self) -> None:
        """Re-read the mirror and the fleet's agent states; called by the app."""
        self.update_header()

    def update_header(self) -> None:
        for bar in self.query(FleetBar):
            bar.show(self.breadcrumbs(), self.squ.summary_text())

    def action_back(self) -> None:
        """Leave a sub-view (esc, q); on a top view this does nothing."""
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()
