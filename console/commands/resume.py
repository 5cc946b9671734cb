"""``squ resume JOB``: the schedule of a suspended job fires again (see ``suspend``)."""

from __future__ import annotations

import argparse

from console.commands._common import add_on
from console.commands.suspend import set_enabled

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("resume", help="let a suspended job's schedule fire again")
    p.add_argument("job", metavar="JOB")
    add_on(p, "only on these agents (default: every agent that has the job)")
    p.set_defaults(func=lambda args: set_enabled(args, enabled=True))
