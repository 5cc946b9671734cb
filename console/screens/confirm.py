"""ConfirmDialog: a destructive or fleet-wide action, spelled out before it happens.

Shows the targets and the equivalent ``squ`` command, starts with focus on
Cancel, and when ``typed_name`` is set (production or many servers) asks the
operator to type it before the confirm button works (CONSOLE.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.bindings import bindings
from console.widgets.cells import fit

__all__ = ["ConfirmDialog"]


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("dialog.cancel")

    def __init__(
        self,
        title: str,
        targets: Sequence[str],
        command: str,
        *,
        typed_name: str = "",
        confirm_label: str = "Confirm",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.targets = list(targets)
        self.command = command
        self.typed_name = typed_name
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(fit(self.title_text, 70).rstrip(), classes="dialog-title", markup=False)
            yield Static(Text("targets: " + ", ".join(self.targets)), classes="dialog-targets")
            yield Static(Text("$ " + self.command), classes="dialog-command")
            if self.typed_name:
                yield Label(f"type {self.typed_name!r} to confirm:", markup=False)
                yield Input(id="typed-name", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button(
                    self.confirm_label,
                    id="confirm",
                    variant="error",
                    disabled=bool(self.typed_name),
                    compact=True,
                )

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "typed-name":
            self.query_one("#confirm", Button).disabled = event.value != self.typed_name

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)
