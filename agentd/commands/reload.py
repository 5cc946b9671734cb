"""``squ-agentd reload``: reload ``jobs.d`` in the running agent (same as SIGHUP).

Prints what changed and every file with an error (whose jobs keep their last
good definition); exits 1 when a file had an error, so configuration
management notices.
"""

from __future__ import annotations

import argparse

from agentd import control
from agentd.commands._common import add_data_dir, data_dir_of, print_json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("reload", help="reload jobs.d in the running agent")
    add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # A big jobs.d takes a while to parse and store; reload is not a health check.
    result = control.request(control.socket_path(data_dir_of(args)), "reload", timeout_s=120.0)
    if args.json:
        print_json(result)
    else:
        for what in ("added", "changed", "removed", "kept"):
            names = result.get(what) or []
            if names:
                print(f"{what}: {', '.join(names)}")
        for err in result.get("errors") or []:
            print(f"error: {err['message']}")
        if not any(result.get(k) for k in ("added", "changed", "removed", "errors")):
            print("no change")
    return 1 if result.get("errors") else 0
