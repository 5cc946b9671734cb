"""``squ-agentd init [--data-dir DIR]``: lay out an agent's data directory.

Creates ``DIR/agentd.toml`` (every setting commented out at its default),
``DIR/jobs.d/``, ``runs/``, ``logs/`` and the store, and prints what it made
and where. Safe to run again: nothing that exists is touched.
"""

from __future__ import annotations

import argparse
import sys

from agentd.commands._common import add_data_dir, data_dir_of
from agentd.config import init_data_dir


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init", help="create the data directory: agentd.toml, jobs.d/, the store"
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args).absolute()
    result = init_data_dir(data_dir)  # ConfigError -> one line on stderr, exit 2 (cli.main)
    for path in result.created:
        print(f"created  {path}")
    for path in result.existing:
        print(f"exists   {path}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.created:
        print(f"\nNext: put jobs in {data_dir / 'jobs.d'}/*.toml, then run:")
        print(f"  squ-agentd serve --data-dir {data_dir}")
    else:
        print(f"{data_dir} was already initialised; nothing changed")
    return 0
