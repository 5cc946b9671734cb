"""``squ-agentd serve``: run the agent in the foreground (systemd style).

Logs go to stderr (journald adds the timestamps when run as a unit, so
``--log-format plain`` drops ours); SIGTERM stops it cleanly with exit code 0;
SIGHUP reloads ``jobs.d``. Running jobs are not killed when the agent stops.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from agentd.commands._common import add_data_dir, data_dir_of
from agentd.logsetup import FORMATS
from agentd.logsetup import install as install_logging
from agentd.metrics_http import DEFAULT_LISTEN, parse_listen


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("serve", help="run the agent in the foreground (logs to stderr)")
    add_data_dir(parser)
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format",
        default="time",
        choices=list(FORMATS),
        help="'plain' leaves timestamps to journald; 'json' and 'logfmt' are structured lines",
    )
    parser.add_argument(
        "--metrics-listen",
        default=os.environ.get("SQU_AGENTD_METRICS", DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"Prometheus endpoint or 'off' (default {DEFAULT_LISTEN}; $SQU_AGENTD_METRICS)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from agentd.config import load_config
    from agentd.daemon import Agent

    install_logging(args.log_format, args.log_level)  # agentd.logsetup: one line per record
    metrics_listen = parse_listen(args.metrics_listen)  # bad value: one line, exit 2
    config = load_config(data_dir_of(args))
    agent = Agent(config)
    agent.metrics_listen = metrics_listen
    asyncio.run(agent.run())
    return 0
