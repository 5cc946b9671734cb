"""Every key binding of the console, in one table, each with an id (CONSOLE.md).

Screens and widgets take their ``BINDINGS`` from here with ``bindings(...)``,
so the help, the docs and the remapping all see the same list. An operator
remaps in ``tui.toml``::

    [keys]
    "jobs.trigger" = "T"        # one or more keys, comma separated
    "app.quit" = "ctrl+q,ctrl+x"

``load_keymap`` checks every id and key, and names the file and the id of a
bad entry; the app hands the result to Textual's ``App.set_keymap``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.binding import Binding, BindingType

from shared.errors import SquError

__all__ = ["KEYS", "BadKeymap", "KeySpec", "bindings", "keymap_markdown", "load_keymap"]


class BadKeymap(SquError):
    code = "bad_keymap"

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}", where=where)


@dataclass(frozen=True, slots=True)
class KeySpec:
    keys: str
    action: str
    description: str
    show: bool = True
    priority: bool = False


KEYS: dict[str, KeySpec] = {
    # app-wide (CONSOLE.md grammar); 4 is kept for DAG
    "app.servers": KeySpec("1", "view('servers')", "Servers"),
    "app.jobs": KeySpec("2", "view('jobs')", "Jobs"),
    "app.runs": KeySpec("3", "view('runs')", "Runs"),
    # Not in the footer yet, so the other views' snapshots stay as they are (docs/approvals.md).
    "app.approvals": KeySpec("5", "view('approvals')", "Approvals", show=False),
    "app.audit": KeySpec("6", "view('audit')", "Audit", show=False),
    "app.alerts": KeySpec("7", "view('alerts')", "Alerts", show=False),
    "app.command": KeySpec("colon", "command_line", "Command", show=False),
    "app.help": KeySpec("question_mark", "help", "Help"),
    "app.quit": KeySpec("ctrl+q", "quit", "Quit", show=False, priority=True),
    # approvals (and audit: reload)
    "approvals.approve": KeySpec("a", "approve", "Approve"),
    "approvals.reject": KeySpec("x", "reject", "Reject"),
    "approvals.reload": KeySpec("g", "reload", "Reload"),
    # alerts (docs/alerts.md)
    "alerts.ack": KeySpec("a", "ack", "Acknowledge"),
    "alerts.all": KeySpec("u", "toggle_all", "All/unacked"),
    "alerts.reload": KeySpec("g", "reload", "Reload"),
    # any sub-view
    "view.back": KeySpec("escape,q", "back", "Back"),
    "view.filter": KeySpec("slash", "filter", "Filter"),
    # servers
    "servers.open": KeySpec("enter", "open", "Jobs on it", show=False),
    # jobs
    "jobs.open": KeySpec("enter", "open", "Detail", show=False),
    "jobs.trigger": KeySpec("t", "trigger", "Trigger"),
    "jobs.suspend": KeySpec("s", "suspend", "Suspend/resume"),
    "jobs.edit": KeySpec("e", "edit", "Edit"),
    "jobs.new": KeySpec("n", "new", "New job", show=False),
    "jobs.runs": KeySpec("h", "runs", "Runs"),
    "jobs.logs": KeySpec("l", "logs", "Last log"),
    "jobs.describe": KeySpec("d", "describe", "Describe"),
    # runs
    "runs.logs": KeySpec("l", "logs", "Log"),
    "runs.rerun": KeySpec("R", "rerun", "Re-run"),
    "runs.kill": KeySpec("K", "kill", "Kill"),
    "runs.up": KeySpec("up,k", "cursor(-1)", "Up", show=False),
    "runs.down": KeySpec("down,j", "cursor(1)", "Down", show=False),
    "runs.page_up": KeySpec("pageup", "page(-1)", "Page up", show=False),
    "runs.page_down": KeySpec("pagedown", "page(1)", "Page down", show=False),
    "runs.top": KeySpec("home", "jump_top", "Top", show=False),
    "runs.bottom": KeySpec("end", "jump_bottom", "Bottom", show=False),
    "runs.open": KeySpec("enter", "select", "Open", show=False),
    "runs.copy": KeySpec("y", "copy_id", "Copy id", show=False),
    # log viewer
    "log.up": KeySpec("up,k", "scroll_by(-1)", "Up", show=False),
    "log.down": KeySpec("down,j", "scroll_by(1)", "Down", show=False),
    "log.page_up": KeySpec("pageup", "scroll_page(-1)", "Page up", show=False),
    "log.page_down": KeySpec("pagedown,space", "scroll_page(1)", "Page down", show=False),
    "log.top": KeySpec("home,g", "scroll_home_now", "Top", show=False),
    "log.end": KeySpec("end,G", "scroll_end_now", "End", show=False),
    "log.follow": KeySpec("f", "follow", "Follow"),
    "log.wrap": KeySpec("w", "wrap", "Wrap"),
    "log.stream": KeySpec("o", "stream", "Stream"),
    "log.search": KeySpec("slash", "search", "Search"),
    "log.copy": KeySpec("y", "copy", "Copy"),
    "log.next": KeySpec("n", "next_match(1)", "Next", show=False),
    "log.previous": KeySpec("N", "next_match(-1)", "Previous", show=False),
    # editor and dialogs
    "editor.save": KeySpec("ctrl+s", "save", "Save", priority=True),
    "dialog.cancel": KeySpec("escape", "cancel", "Cancel"),
}

_KEY = re.compile(r"^[A-Za-z0-9_+]+$")


def bindings(*ids: str) -> list[BindingType]:
    """Textual bindings for ``ids`` from the table (a typo is a KeyError at import)."""
    out: list[BindingType] = []
    for binding_id in ids:
        spec = KEYS[binding_id]
        out.append(
            Binding(
                spec.keys,
                spec.action,
                spec.description,
                show=spec.show,
                priority=spec.priority,
                id=binding_id,
            )
        )
    return out


def check_keymap(mapping: Mapping[str, Any], *, where: str) -> dict[str, str]:
    """Validate a ``[keys]`` table: known ids, key names, no empty values."""
    out: dict[str, str] = {}
    for binding_id, keys in mapping.items():
        place = f"{where} [keys] {binding_id!r}"
        if binding_id not in KEYS:
            near = [k for k in KEYS if k.split(".")[-1] == binding_id.split(".")[-1]]
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise BadKeymap(place, f"no binding with this id{hint}")
        if not isinstance(keys, str) or not keys.strip():
            raise BadKeymap(place, 'expected a string of keys such as "t" or "ctrl+t,T"')
        parts = [k.strip() for k in keys.split(",")]
        for key in parts:
            if not _KEY.match(key):
                raise BadKeymap(place, f"{key!r} is not a key name (letters, digits, +, _)")
        out[binding_id] = ",".join(parts)
    return out


def load_keymap(path: Path) -> dict[str, str]:
    """The ``[keys]`` table of ``path`` (``{}`` when the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadKeymap(str(path), f"not valid TOML: {exc}") from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise BadKeymap(str(path), "[keys] must be a table")
    return check_keymap(keys, where=str(path))


def keymap_markdown() -> str:
    """The bindings table for docs/console.md (a test keeps the docs in step)."""
    rows = ["| id | keys | does |", "|---|---|---|"]
    rows += [f"| `{i}` | `{s.keys}` | {s.description} |" for i, s in KEYS.items()]
    return "\n".join(rows)
