"""``squ-agentd serve``: run the agent in the foreground (systemd style).

Logs go to stderr (journald adds the timestamps when run as a unit, so
``--log-format plain`` drops ours); SIGTERM stops it cleanly with exit code 0;
SIGHUP reloads ``jobs.d``. Running jobs are not killed when the agent stops.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agentd.commands._common import add_data_dir, data_dir_of


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the agent in the foreground (logs to stderr)")
    add_data_dir(parser)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format",
        default="time",
        choices=["time", "plain"],
        help="'plain' leaves timestamps to journald",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentd.config import load_config
    from agentd.daemon import Agent

    fmt = "%(levelname)s %(name)s: %(message)s"
    if args.log_format == "time":
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format=fmt)
    config = load_config(data_dir_of(args))
    asyncio.run(Agent(config).run())
    return 0
