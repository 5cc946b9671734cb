"""``squ-agentd``: the daemon's command line.

Each subcommand lives in ``agentd/commands/<name>.py`` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``, so commands stay small and
can be tested by calling ``main([...])``. A ``SquError`` becomes a one-line
message on stderr and exit code 2; nothing else is caught here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shared.errors import SquError

COMMANDS = (
    "serve",
    "init",
    "reload",
    "status",
    "jobs",
    "run",
    "history",
    "logs",
    "next",
    "import_crontab",
    "check",
    "audit",
    "cancel",
    "doctor",
    "backup",
    "restore",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="squ-agentd", description="The squ-cron agent: schedules, runs and records jobs."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"agentd.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"agentd.commands.{name}":
                raise
            continue  # not built yet
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SquError as exc:
        print(f"squ-agentd {args.command}: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
