"""``squ-agentd run JOB``: trigger a job now through the running agent.

``-p NAME=VALUE`` overrides a parameter (validated against the job's typed
parameters). With ``--wait`` the command waits for the run (retries
included) and exits with the job's exit code: 124 for a timeout, 128+N when
killed by signal N, 130 when cancelled, 125 when lost, 3 when skipped.
"""

from __future__ import annotations

import argparse
import getpass
import os

from agentd import control
from agentd.commands._common import BadArgument, add_data_dir, data_dir_of, print_json


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("run", help="run a job now (through the running agent)")
    add_data_dir(parser)
    parser.add_argument("job", help="the job's name")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter (repeatable)",
    )
    parser.add_argument("--wait", action="store_true", help="wait and exit with the job's code")
    parser.add_argument("--json", action="store_true", help="print the execution as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    params: dict[str, str] = {}
    for item in args.param:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadArgument("--param", f"{item!r} is not NAME=VALUE")
        params[name] = value
    body = {"job": args.job, "params": params, "wait": args.wait, "by": f"local:{_who()}"}
    result = control.request(
        control.socket_path(data_dir_of(args)), "run", body, timeout_s=None if args.wait else 30.0
    )
    ex = result["execution"]
    if args.json:
        print_json(result)
    elif args.wait:
        print(f"{ex['id']} {ex['status']} exit={ex.get('exit_code')} ({ex['job']})")
    else:
        print(f"{ex['id']} {ex['status']} ({ex['job']})")
    return int(result.get("exit_code", 0)) if args.wait else 0


def _who() -> str:
    try:
        return os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
