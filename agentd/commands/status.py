"""``squ-agentd status``: is the agent running, since when, with what."""

from __future__ import annotations

import argparse

from agentd import control
from agentd.commands._common import add_data_dir, data_dir_of, fmt_time, print_json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("status", help="show whether the agent runs and what it is doing")
    add_data_dir(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    status = control.request(control.socket_path(data_dir_of(args)), "status")
    if args.json:
        print_json(status)
        return 0
    print(f"agent        {status['agent']} (pid {status['pid']})")
    print(f"running for  {status['uptime_s']:.0f} s (since {fmt_time(status['started_at'])})")
    print(f"data dir     {status['data_dir']}")
    print(f"jobs         {status['jobs']}")
    print(f"active runs  {status['active_executions']}")
    print(f"containment  {status['containment'] or '-'}")
    if status.get("refusing_new_work"):
        print(f"NOT STARTING NEW WORK: {status['refusing_new_work']}")
    for err in status.get("job_errors") or []:
        print(f"jobs.d error: {err['message']}")
    return 0
