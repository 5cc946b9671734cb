"""The ``:`` command line of the TUI, parsed without touching the UI (CONSOLE.md).

``parse_command(":runs job=backup status=failed since=24h", now=...)`` returns
a ``Command``; a mistake raises ``BadCommand`` naming the word that is wrong,
which the app shows as a toast. Supported:

* ``:servers`` / ``:jobs [@agent]`` / ``:runs [job=..] [agent=..|@agent]
  [status=a,b] [trigger=..] [since=24h] [until=1h]``
* ``:job NAME`` (detail), ``:edit NAME``, ``:new`` (editor), ``:logs EXEC``
  (an execution id or its unique prefix; ``@agent`` when several agents ran
  it), ``:theme NAME``, ``:ssh AGENT`` (hands the terminal to ``ssh`` to that
  agent's host, back on exit), ``:q``
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from console.fleet.mirror import RunFilter
from shared.enums import ExecutionStatus, Trigger
from shared.errors import SquError

__all__ = ["BadCommand", "Command", "parse_command", "parse_duration_s"]

COMMANDS = (
    "servers", "jobs", "runs", "job", "edit", "new", "logs", "theme", "ssh", "q", "quit",
)  # fmt: skip
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadCommand(SquError):
    code = "bad_command"

    def __init__(self, text: str, why: str) -> None:
        super().__init__(f":{text}: {why}", command=text)


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    argument: str = ""
    agent: str = ""
    filters: RunFilter = field(default_factory=RunFilter)


def parse_duration_s(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` as seconds; ValueError otherwise."""
    found = _DURATION.match(text.strip())
    if not found:
        raise ValueError(f"{text!r} is not a duration like 30m, 24h or 7d")
    return float(found.group(1)) * _UNIT_S[found.group(2)]


def parse_command(text: str, *, now: float) -> Command:
    """Parse what the operator typed after ``:`` (``now`` anchors since=/until=)."""
    text = text.strip().lstrip(":").strip()
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise BadCommand(text, str(exc)) from None
    if not words:
        raise BadCommand(text, f"type a command: {', '.join(COMMANDS[:-1])}")
    name, rest = words[0].lower(), words[1:]
    if name not in COMMANDS:
        raise BadCommand(text, f"unknown command {name!r} (known: {', '.join(COMMANDS[:-1])})")
    if name == "quit":
        name = "q"
    if name == "runs":
        return Command("runs", filters=_run_filter(text, rest, now))
    agent = ""
    positional = []
    for word in rest:
        if word.startswith("@") and len(word) > 1:
            agent = word[1:]
        else:
            positional.append(word)
    if name == "ssh" and not positional and agent:
        positional = [agent]  # ":ssh @db1" reads as well as ":ssh db1"
    if name in ("job", "edit", "logs", "theme", "ssh") and len(positional) != 1:
        raise BadCommand(text, f"{name} takes exactly one argument")
    if name in ("servers", "jobs", "new", "q") and positional:
        raise BadCommand(text, f"{name} takes no argument {positional[0]!r}")
    return Command(name, positional[0] if positional else "", agent)


def _run_filter(text: str, words: list[str], now: float) -> RunFilter:
    values: dict[str, str] = {}
    for word in words:
        if word.startswith("@") and len(word) > 1:
            values["agent"] = word[1:]
            continue
        key, sep, value = word.partition("=")
        if not sep or not value:
            raise BadCommand(text, f"{word!r}: expected key=value (job, agent, status, ...)")
        if key not in ("job", "agent", "server", "status", "trigger", "since", "until"):
            raise BadCommand(text, f"{key!r} is not a runs filter")
        values["agent" if key == "server" else key] = value
    statuses = frozenset(s for s in values.get("status", "").split(",") if s)
    known = {s.value for s in ExecutionStatus}
    for status in statuses:
        if status not in known:
            raise BadCommand(text, f"status {status!r} is not one of {', '.join(sorted(known))}")
    trigger = values.get("trigger", "")
    if trigger and trigger not in {t.value for t in Trigger}:
        raise BadCommand(text, f"trigger {trigger!r} is not one of {', '.join(Trigger)}")
    bounds: dict[str, float] = {}
    for key in ("since", "until"):
        if key in values:
            try:
                bounds[key] = now - parse_duration_s(values[key])
            except ValueError as exc:
                raise BadCommand(text, f"{key}: {exc}") from None
    return RunFilter(
        job=values.get("job", ""),
        agent=values.get("agent", ""),
        statuses=statuses,
        trigger=trigger,
        since=bounds.get("since"),
        until=bounds.get("until"),
    )


def parse_filter(text: str) -> tuple[str, bool]:
    """The ``/`` filter: a regex, inverted when it starts with ``!``."""
    text = text.strip()
    if text.startswith("!"):
        return text[1:], True
    return text, False
