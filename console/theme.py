"""Console themes and the TUI's own settings (``tui.toml``).

Over SSH assume 256 colours (OpenSSH does not forward COLORTERM): the
``squ-dark`` / ``squ-light`` themes use colours that survive the reduction,
and Textual's ``ansi-dark`` / ``ansi-light`` use the terminal's own palette,
which is what light-terminal users usually want. NO_COLOR is honoured by
Textual itself (it drops colour, keeps bold/dim/reverse); statuses are words
too, so nothing is lost.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from textual.theme import Theme

from console.bindings import BadKeymap, check_keymap
from shared.errors import SquError

__all__ = ["SQU_DARK", "SQU_LIGHT", "THEMES", "TuiConfig", "TuiConfigError", "load_tui_config"]

SQU_DARK = Theme(
    name="squ-dark",
    primary="#5f87d7",
    secondary="#5fafaf",
    accent="#d7af5f",
    warning="#d7af00",
    error="#d75f5f",
    success="#5faf5f",
    foreground="#d0d0d0",
    background="#1c1c1c",
    surface="#262626",
    panel="#303030",
    dark=True,
)

SQU_LIGHT = Theme(
    name="squ-light",
    primary="#005faf",
    secondary="#008787",
    accent="#875f00",
    warning="#af5f00",
    error="#af0000",
    success="#008700",
    foreground="#1c1c1c",
    background="#eeeeee",
    surface="#e4e4e4",
    panel="#d0d0d0",
    dark=False,
)

# The names an operator may choose; the ansi-* ones are Textual's built-ins.
THEMES = ("squ-dark", "squ-light", "ansi-dark", "ansi-light")


class TuiConfigError(SquError):
    code = "tui_config"


@dataclass(frozen=True, slots=True, kw_only=True)
class TuiConfig:
    """How the TUI looks and which keys it uses; tests pass fixed values."""

    theme: str = "ansi-dark"
    keymap: dict[str, str] = field(default_factory=dict)
    tz: tzinfo | None = None  # None: the console machine's local zone
    refresh_s: float = 0.2  # CONSOLE.md: coalesce bursts, redraw every 100-250 ms
    action_timeout_s: float = 15.0  # an action on an agent never hangs the UI longer
    cursor_blink: bool = True  # off for snapshots, and for operators who prefer it
    start_view: str = "jobs"  # servers | jobs | runs


def load_tui_config(path: Path) -> TuiConfig:
    """Read ``tui.toml`` (theme, timezone, ``[keys]``); defaults when it does not exist."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return TuiConfig()
    except tomllib.TOMLDecodeError as exc:
        raise TuiConfigError(f"{path}: not valid TOML: {exc}") from None
    theme = data.get("theme", "ansi-dark")
    if theme not in THEMES:
        raise TuiConfigError(f"{path}: theme {theme!r} is not one of {', '.join(THEMES)}")
    tz: tzinfo | None = None
    if "timezone" in data:
        try:
            tz = ZoneInfo(str(data["timezone"]))
        except (ZoneInfoNotFoundError, ValueError):
            raise TuiConfigError(f"{path}: timezone {data['timezone']!r} is not known") from None
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        raise BadKeymap(str(path), "[keys] must be a table")
    start_view = data.get("start_view", "jobs")
    if start_view not in ("servers", "jobs", "runs"):
        raise TuiConfigError(f"{path}: start_view {start_view!r} is not servers, jobs or runs")
    blink = data.get("cursor_blink", True)
    if not isinstance(blink, bool):
        raise TuiConfigError(f"{path}: cursor_blink must be true or false")
    return TuiConfig(
        theme=theme,
        keymap=check_keymap(keys, where=str(path)),
        tz=tz,
        cursor_blink=blink,
        start_view=start_view,
    )
