"""``squ-agentd cancel EXEC``: stop a queued or running execution through the running agent.

The whole job gets SIGTERM, then SIGKILL after its grace period; the
execution ends ``cancelled``. Cancelling a finished execution says so and
changes nothing.
"""

from __future__ import annotations

import argparse

from agentd import control
from agentd.commands._common import add_data_dir, data_dir_of, print_json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("cancel", help="cancel a queued or running execution")
    add_data_dir(parser)
    parser.add_argument("execution", help="the execution id (from `squ-agentd history`)")
    parser.add_argument("--json", action="store_true", help="print the execution as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    result = control.request(
        control.socket_path(data_dir_of(args)), "cancel", {"execution": args.execution}
    )
    ex = result["execution"]
    if args.json:
        print_json(result)
    else:
        print(f"{ex['id']} {ex['status']} ({ex['job']})")
    return 0
