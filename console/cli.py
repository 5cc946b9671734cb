"""``squ``: the operator's console.

With no arguments it opens the TUI on the fleet in the operator's inventory.
Each subcommand lives in ``console/commands/<name>.py`` with ``add_parser(sub)``
(setting ``func``) and ``run(args) -> int``. A ``SquError`` becomes a one-line
message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shared.errors import SquError

COMMANDS = (
    "tui",
    "demo",
    "keygen",
    "agents",
    "jobs",
    "apply",
    "run",
    "history",
    "logs",
    "cancel",
    "suspend",
    "resume",
    "approvals",
    "approve",
    "reject",
    "audit",
    "alerts",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squ", description="The squ-cron console: see and steer the jobs of a fleet."
    )
    parser.add_argument(
        "--config-dir", help="where fleet.toml and the operator key live (default: XDG config)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"console.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"console.commands.{name}":
                raise
            continue  # not built yet
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv or sys.argv[1:]), "tui"])
    try:
        return int(args.func(args))
    except SquError as exc:
        print(f"squ {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
