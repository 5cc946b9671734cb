"""What the scriptable ``squ`` commands share: the inventory, the key, a settled fleet.

A command calls ``with_fleet(args, body)``: the links to the chosen agents
(``--on``, else every agent) connect at once, and ``body(fleet, up)`` runs with
the agents that are up; each agent that is not is named on stderr with the
reason ("db2: down (connection refused ...)"), and the exit code says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from console.config import Inventory, config_dir, load_inventory
from shared.errors import SquError
from shared.textsafe import inert_bytes

if TYPE_CHECKING:
    # The network side (and Textual, through the fleet's messages) loads only when a
    # command connects: `squ agents list` or `squ --help` stay quick.
    from console.fleet.fleet import Fleet
    from console.fleet.mirror import Mirror
    from console.fleet.source import AgentState

__all__ = [
    "EXIT_PARTIAL",
    "Context",
    "NoAgents",
    "NoneUp",
    "add_on",
    "context",
    "mirror_path",
    "print_json",
    "say_error",
    "with_fleet",
]

# Some agents answered and some did not (the ones that did not are named on stderr).
EXIT_PARTIAL = 4
MIRROR_FILE = "mirror.db"


class NoAgents(SquError):
    code = "no_agents"

    def __init__(self, path: Path) -> None:
        super().__init__(
            f"no agents in {path}; add one with `squ agents add NAME URL` "
            "(or try `squ demo`: a local agent with sample jobs)",
            path=str(path),
        )


class NoneUp(SquError):
    code = "agent_unavailable"

    def __init__(self, states: Sequence[AgentState]) -> None:
        names = ", ".join(s.name for s in states)
        super().__init__(f"no agent could be reached ({names})")


@dataclass(frozen=True, slots=True)
class Context:
    config_dir: Path
    inventory: Inventory


def context(args: argparse.Namespace) -> Context:
    directory = config_dir(getattr(args, "config_dir", None))
    return Context(directory, load_inventory(directory))


def mirror_path(ctx: Context) -> Path:
    """The console's history mirror: beside fleet.toml (one per inventory)."""
    return ctx.config_dir / MIRROR_FILE


def add_on(parser: argparse.ArgumentParser, what: str = "only these agents") -> None:
    parser.add_argument(
        "--on", action="append", default=[], metavar="SERVER", help=f"{what} (repeatable)"
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=15.0, metavar="S", help=argparse.SUPPRESS
    )


def say_error(command: str, message: str) -> None:
    print(f"squ {command}: {message}", file=sys.stderr)


def print_json(value: Any) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2, sort_keys=False))


def describe(state: AgentState, timeout_s: float | None = None) -> str:
    if state.link.value == "connecting" and timeout_s is not None:
        return f"no answer within {timeout_s:g} s (still connecting)"
    why = state.link.value.replace("_", " ")
    return f"{why} ({state.error})" if state.error else why


Body = Callable[["Fleet", list[str]], Awaitable[int]]


def with_fleet(
    args: argparse.Namespace,
    body: Body,
    *,
    only: Sequence[str] = (),
    mirror: Mirror | None = None,
    subscribe: bool = False,
) -> int:
    """Connect to the agents (``only``, else ``args.on``, else all) and run ``body``.

    Returns ``body``'s exit code, or ``EXIT_PARTIAL`` if it succeeded but some agents
    were unreachable. Raises ``NoneUp`` when none was reachable.
    """
    from console.fleet.fleet import Fleet
    from console.keys import load_operator_key

    ctx = context(args)
    if not ctx.inventory.agents:
        raise NoAgents(ctx.inventory.path)
    names = list(only or getattr(args, "on", None) or [])
    key = load_operator_key(ctx.inventory, ctx.config_dir)
    timeout_s = float(getattr(args, "connect_timeout", 15.0))

    async def main() -> int:
        fleet = Fleet(ctx.inventory, key=key, mirror=mirror, only=names, subscribe=subscribe)
        async with fleet:
            states = await fleet.settle(timeout_s)
            down = [s for s in states if not s.link.is_usable]
            for state in down:
                say_error(args.command, f"{state.name}: {describe(state, timeout_s)}")
            up = [s.name for s in states if s.link.is_usable]
            if not up:
                raise NoneUp(states)
            code = await body(fleet, up)
        return EXIT_PARTIAL if code == 0 and down else code

    return asyncio.run(main())


def remote_message(exc: SquError) -> str:
    """An agent's refusal in words (AgentError already names the agent)."""
    from console.fleet.link import AgentError

    if isinstance(exc, AgentError):
        return f"{exc.message} [{exc.remote_code}]"
    return exc.message


def write_output(stream: str, data: bytes) -> None:
    """Job output to our stdout/stderr: raw bytes into a pipe or file, inert text on a
    terminal (DESIGN.md: job output is hostile; it never drives the operator's terminal)."""
    out = sys.stderr if stream == "stderr" else sys.stdout
    if out.isatty():
        out.write(inert_bytes(data))
        out.flush()
    else:
        out.flush()
        out.buffer.write(data)
        out.buffer.flush()
