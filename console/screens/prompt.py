"""A one-line prompt at the bottom of the screen, for ``:`` commands, ``/`` filters and search.

Dismisses with the text on enter and with ``None`` on escape.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from console.bindings import bindings

__all__ = ["Prompt"]


class Prompt(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("dialog.cancel")

    DEFAULT_CSS = """
    Prompt { align: left bottom; background: transparent; }
    Prompt > Horizontal { height: 1; width: 100%; background: $panel; dock: bottom; }
    Prompt Label { width: auto; padding: 0 0 0 1; color: $accent; text-style: bold; }
    Prompt Input { border: none; height: 1; padding: 0; width: 1fr; background: $panel; }
    """

    def __init__(self, label: str, value: str = "", *, placeholder: str = "") -> None:
        super().__init__()
        self.label = label
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.label, markup=False)
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
