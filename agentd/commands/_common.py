"""Helpers shared by the ``squ-agentd`` subcommands: data dir, durations, output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from shared.errors import SquError

__all__ = [
    "BadArgument",
    "add_data_dir",
    "data_dir_of",
    "fmt_time",
    "parse_since",
    "print_json",
    "print_table",
    "write_out",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadArgument(SquError):
    """A command-line value that cannot be used; names the option."""

    code = "bad_argument"

    def __init__(self, option: str, why: str) -> None:
        super().__init__(f"{option}: {why}", option=option)


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the agent's data directory (default: $SQU_AGENTD_DATA or /var/lib/squ-agentd)",
    )


def data_dir_of(args: argparse.Namespace) -> Path:
    """The data dir named on the command line, else the configured default."""
    if args.data_dir is not None:
        return Path(args.data_dir)
    from agentd.config import default_data_dir

    return Path(default_data_dir())


def parse_since(text: str, *, now: float) -> float:
    """``24h``, ``30m``, ``7d``, ``90s``, ``2w`` ago, or an ISO 8601 time -> epoch seconds."""
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadArgument(
            "--since", f"{text!r} is neither a duration (24h, 30m, 7d) nor an ISO time"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # a naive time means the operator's local zone
    return when.timestamp()


def fmt_time(ts: float | None) -> str:
    """Local time, to the second, for tables ('-' when unset)."""
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def write_out(text: str) -> None:
    """Write to stdout; a reader that went away (``| head``) ends the command quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None


def print_json(value: Any) -> None:
    write_out(json.dumps(value, indent=2, default=str) + "\n")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table (job output is never printed here: only our own fields)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    write_out("\n".join(lines) + "\n")
