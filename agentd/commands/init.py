"""``squ-agentd init [--data-dir DIR]``: lay out an agent's data directory.

Creates ``DIR/agentd.toml`` (every setting commented out at its default),
``DIR/jobs.d/``, ``runs/``, ``logs/``, the store, the agent's TLS certificate
and key and an ``authorized_operators`` template (``agentd.server.boot``), and
prints what it made and where, and the certificate's fingerprint (what
consoles will pin). Safe to run again: nothing that exists is touched.
"""

from __future__ import annotations

import argparse
import sys

from agentd.commands._common import add_data_dir, data_dir_of
from agentd.config import init_data_dir, load_config
from agentd.server.boot import OPERATORS_FILE, TLS_CERT, TLS_KEY, init_server_files


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init", help="create the data directory: agentd.toml, jobs.d/, store, TLS certificate"
    )
    add_data_dir(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args).absolute()
    result = init_data_dir(data_dir)  # ConfigError -> one line on stderr, exit 2 (cli.main)
    server_files = [data_dir / p for p in (TLS_CERT, TLS_KEY, OPERATORS_FILE)]
    missing = [p for p in server_files if not p.exists()]
    # The certificate names the agent as its (possibly edited) config does.
    fingerprint = init_server_files(data_dir, load_config(data_dir).name)
    result.created.extend(missing)
    result.existing.extend(p for p in server_files if p not in missing)
    for path in result.created:
        print(f"created  {path}")
    for path in result.existing:
        print(f"exists   {path}")
    print(f"certificate fingerprint: {fingerprint}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.created:
        print(f"\nNext: add operators to {data_dir / OPERATORS_FILE},")
        print(f"put jobs in {data_dir / 'jobs.d'}/*.toml, then run:")
        print(f"  squ-agentd serve --data-dir {data_dir}")
    else:
        print(f"{data_dir} was already initialised; nothing changed")
    return 0
