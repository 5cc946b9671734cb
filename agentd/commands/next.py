"""``squ-agentd next EXPR [--tz ZONE] [--after ISO-TIME] [-n N] [--json]``.

Previews a schedule without an agent running: its description, then the next
N fire times, each in the job's zone and in UTC, with the daylight-saving rule
the scheduler uses. EXPR is a cron expression (5 or 6 fields, or a macro) or a
one-shot ``at`` time (ISO 8601). A bad expression or zone exits 2 with the
reason (``cli.main`` prints the ``SquError``).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any

from agentd.commands._common import BadArgument, print_json
from agentd.config import system_timezone
from shared.cron import CronExpr, describe, load_zone, next_fire_times, parse, parse_at

MAX_N = 1000
# An `at` time starts with a date; no cron expression does (it has 5+ fields or is a macro).
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "next",
        help="show a schedule's description and next fire times",
        description=(
            "Describe a schedule and list its next fire times in its zone and in UTC. "
            "EXPR is a cron expression ('30 2 * * *', six fields with seconds first, "
            "@daily ...) or a one-shot ISO time (2026-12-01T02:30)."
        ),
    )
    parser.add_argument(
        "expr", nargs="+", metavar="EXPR", help="the schedule (quote it: '0 2 * * *')"
    )
    parser.add_argument(
        "--tz", metavar="ZONE", help="IANA time zone of the job (default: this machine's)"
    )
    parser.add_argument(
        "--after",
        metavar="ISO-TIME",
        help="list times strictly after this (default: now); without an offset it is in ZONE",
    )
    parser.add_argument(
        "-n", type=int, default=5, metavar="N", help=f"how many times (1-{MAX_N}, default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    expr = " ".join(args.expr).strip()
    if not 1 <= args.n <= MAX_N:
        raise BadArgument("-n", f"must be 1-{MAX_N}, got {args.n}")
    zone_name = args.tz or system_timezone()
    tz = load_zone(zone_name)
    after = parse_at(args.after, tz) if args.after else datetime.now(UTC).astimezone(tz)

    record: CronExpr | None = None
    if _ISO_DATE.match(expr):
        when = parse_at(expr, tz)
        description = f"Once at {when.strftime('%Y-%m-%d %H:%M:%S %Z')}"
        times = [when] if when > after else []
    else:
        record = parse(expr)
        description = describe(expr)
        times = next_fire_times(expr, tz=tz, after=after, n=args.n)

    if args.json:
        print_json(
            {
                "expr": expr,
                "description": description,
                "timezone": tz.key,
                "after": after.isoformat(),
                "fire_times": [_as_json(t) for t in times],
            }
        )
        return 0
    print(f"{description}  [{expr}, {tz.key}]")
    if not times:
        if expr == "@reboot":
            print("no scheduled times: runs once at every agent start")
        else:
            print(f"no fire times after {after.isoformat()}")
    width = max((len(_local(t)) for t in times), default=0)
    for t in times:
        utc = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{_local(t).ljust(width)}   {utc} UTC{_dst_note(record, t)}")
    return 0


def _dst_note(record: CronExpr | None, t: datetime) -> str:
    """Say why a time looks odd: moved out of a DST gap, or the second pass of a repeated hour."""
    if record is None:
        return ""
    if (
        t.hour not in record.hours
        or t.minute not in record.minutes
        or t.second not in record.seconds
    ):
        return "   (scheduled time falls in the DST gap: runs at its end)"
    if t.fold:
        return "   (repeated hour, second pass)"
    return ""


def _local(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %a %H:%M:%S %Z (%z)")


def _as_json(t: datetime) -> dict[str, Any]:
    return {
        "local": t.isoformat(),
        "utc": t.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
