"""TriggerDialog: run a job now, on chosen agents, with typed parameters.

Shows the targets (agents that are not up are marked and not preselected),
one field per parameter with its default, the equivalent ``squ run`` command
as it stands, and starts with focus on Cancel. Many servers (3 or more) or a
job labelled ``env=production`` ask for the job's name to be typed first
(CONSOLE.md). Parameter values are checked with ``shared.jobs.parse_params``
as they are typed; the error names the parameter.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static

from console.bindings import bindings
from console.fleet.mirror import JobSummary
from console.fleet.source import AgentState
from console.widgets.cells import fit
from shared.errors import SquError
from shared.jobs import parse_params

__all__ = ["MANY_SERVERS", "TriggerDialog", "TriggerRequest", "equivalent_command"]

MANY_SERVERS = 3


@dataclass(frozen=True, slots=True)
class TriggerRequest:
    job: str
    agents: tuple[str, ...]
    params: tuple[tuple[str, str], ...]


def equivalent_command(job: str, agents: Sequence[str], params: Mapping[str, str]) -> str:
    """The ``squ run`` command line that does what the dialog will do."""
    words = ["squ", "run", job]
    for agent in agents:
        words += ["--on", agent]
    for name, value in params.items():
        words += ["--param", f"{name}={value}"]
    return shlex.join(words)


def _default_text(value: str | int | float | bool | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def needs_typed_name(summary: JobSummary, agents: Sequence[str]) -> bool:
    env = summary.job.labels.get("env", "").lower()
    return len(agents) >= MANY_SERVERS or env in ("prod", "production")


class TriggerDialog(ModalScreen[TriggerRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("dialog.cancel")

    def __init__(self, summary: JobSummary, agents: Sequence[AgentState]) -> None:
        super().__init__()
        self.summary = summary
        self.states = {a.name: a for a in agents}
        self.error = ""

    def compose(self) -> ComposeResult:
        job = self.summary.job
        with VerticalScroll(classes="dialog", id="trigger"):
            yield Label(f"Run {fit(job.name, 60).rstrip()} now", classes="dialog-title")
            options = []
            for agent in self.summary.agents:
                state = self.states.get(agent)
                is_up = state is not None and not state.is_stale
                label = agent if is_up else f"{agent} ({state.link.value if state else 'unknown'})"
                options.append((Text(label), agent, is_up))
            yield SelectionList[str](*options, id="targets")
            for param in job.parameters:
                default = _default_text(param.default)
                hint = f" [{'|'.join(param.choices)}]" if param.choices else ""
                required = " required" if param.required else ""
                yield Label(f"{param.name} ({param.type}{required}){hint}", markup=False)
                yield Input(default, id=f"param-{param.name}", classes="param", compact=True)
            yield Static(id="param-error", classes="error")
            yield Static(id="command", classes="dialog-command")
            if self._typed_name_needed():
                yield Label(f"type {job.name!r} to confirm:", id="typed-label", markup=False)
                yield Input(id="typed-name", compact=True)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Run", id="run", variant="warning", compact=True)

    def on_mount(self) -> None:
        self._update()
        self.query_one("#cancel", Button).focus()

    def _typed_name_needed(self) -> bool:
        return needs_typed_name(self.summary, self.summary.agents)

    def selected_agents(self) -> tuple[str, ...]:
        chosen = set(self.query_one("#targets", SelectionList).selected)
        return tuple(a for a in self.summary.agents if a in chosen)

    def overrides(self) -> dict[str, str]:
        """Parameter values that differ from the defaults (what the command line needs)."""
        out = {}
        for param in self.summary.job.parameters:
            value = self.query_one(f"#param-{param.name}", Input).value
            default = _default_text(param.default)
            if value != default or (param.required and value):
                out[param.name] = value
        return out

    def _update(self) -> None:
        agents = self.selected_agents()
        overrides = self.overrides()
        try:
            parse_params(self.summary.job, overrides)
            self.error = ""
        except SquError as exc:
            self.error = exc.message
        if not agents:
            self.error = self.error or "choose at least one target"
        self.query_one("#param-error", Static).update(Text(self.error, style="red"))
        command = equivalent_command(self.summary.job.name, agents, overrides)
        self.query_one("#command", Static).update(Text("$ " + command))
        typed_ok = True
        if self.query("#typed-name"):
            typed_ok = self.query_one("#typed-name", Input).value == self.summary.job.name
        self.query_one("#run", Button).disabled = bool(self.error) or not typed_ok

    def on_input_changed(self, event: Input.Changed) -> None:
        self._update()

    def on_selection_list_selected_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self._update()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id != "run":
            self.dismiss(None)
            return
        request = TriggerRequest(
            self.summary.job.name, self.selected_agents(), tuple(self.overrides().items())
        )
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
