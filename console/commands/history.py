"""``squ history``: executions across the fleet, newest first, from the console's mirror.

First every reachable agent's new history is pulled into the mirror (by cursor,
idempotent: see console/fleet/link.py), then the mirror is queried, so agents
that are down still show what was last synced (named on stderr as stale).
``--offline`` skips the pull.
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING

from console.commands._common import (
    EXIT_PARTIAL,
    NoneUp,
    add_on,
    context,
    mirror_path,
    print_json,
    say_error,
    with_fleet,
)
from console.commands.jobs import print_table
from shared.enums import ExecutionStatus
from shared.errors import SquError

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet
    from console.fleet.mirror import Mirror, RunFilter, StoredRun

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BadFilter(SquError):
    code = "invalid_query"

    def __init__(self, option: str, value: str, why: str) -> None:
        super().__init__(f"{option} {value!r}: {why}", option=option)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", help="list executions (newest first)")
    add_on(p)
    p.add_argument("--job", default="", help="only this job")
    p.add_argument("--status", action="append", default=[], help="only this status (repeatable)")
    p.add_argument("--trigger", default="", help="schedule, manual, retry, ...")
    p.add_argument("--since", default="", help="a duration back (30m, 2h, 7d) or an ISO time")
    p.add_argument("--grep", default="", help="a regular expression over job, agent, status, id")
    p.add_argument("-n", "--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--offline", action="store_true", help="read the mirror only, no network")
    p.add_argument("--json", action="store_true")
    # Rows per sync request (tests use small batches to stop a sync in the middle).
    p.add_argument("--batch", type=int, default=500, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def parse_since(text: str, now: float) -> float | None:
    if not text:
        return None
    if match := _DURATION.match(text.strip()):
        return now - int(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadFilter(
            "--since", text, "use a duration such as 2h or 7d, or an ISO time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the operator's local time
    return moment.timestamp()


def filters_of(args: argparse.Namespace) -> RunFilter:
    from console.fleet.mirror import RunFilter

    known = {s.value for s in ExecutionStatus}
    for status in args.status:
        if status not in known:
            raise BadFilter("--status", status, f"one of {', '.join(sorted(known))}")
    if args.limit < 1:
        raise BadFilter("--limit", str(args.limit), "must be at least 1")
    return RunFilter(
        job=args.job,
        agent=args.on[0] if len(args.on) == 1 else "",
        statuses=frozenset(args.status),
        trigger=args.trigger,
        since=parse_since(args.since, time.time()),
        text=args.grep,
    )


def run(args: argparse.Namespace) -> int:
    from console.fleet.mirror import Mirror

    filters = filters_of(args)
    ctx = context(args)
    path = mirror_path(ctx)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    mirror = Mirror.open(path)
    try:
        code = 0
        if not args.offline:
            code = pull(args, mirror)
        runs = mirror.page_runs(filters, None, args.limit)
        if len(args.on) > 1:
            runs = [r for r in runs if r.agent in args.on]
    finally:
        mirror.close()
    show(runs, as_json=args.json)
    return code


def pull(args: argparse.Namespace, mirror: Mirror) -> int:
    """Sync every reachable agent into the mirror; an unreachable one shows stale rows."""

    async def body(fleet: Fleet, up: list[str]) -> int:
        failed = 0
        for agent in up:
            try:
                await fleet.link(agent).sync_history(mirror=mirror, batch=args.batch)
            except SquError as exc:
                say_error("history", f"{agent}: sync failed: {exc.message}")
                failed += 1
        return EXIT_PARTIAL if failed else 0

    try:
        return with_fleet(args, body)
    except NoneUp as exc:
        say_error("history", f"{exc.message}; showing the mirror as last synced")
        return EXIT_PARTIAL


def show(runs: list[StoredRun], *, as_json: bool) -> None:
    if as_json:
        print_json([{"agent": r.agent, **_builtins(r)} for r in runs])
        return
    if not runs:
        print("no executions match")
        return
    rows = [("ID", "AGENT", "JOB", "STATUS", "TRIGGER", "STARTED", "DURATION", "EXIT")]
    for r in runs:
        ex = r.execution
        started = ex.started_at or ex.scheduled_for or ex.created_at
        when = datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S") if started else ""
        duration = f"{ex.duration_ms / 1000:.1f}s" if ex.duration_ms is not None else ""
        code = "" if ex.exit_code is None else str(ex.exit_code)
        rows.append((ex.id, r.agent, ex.job, str(ex.status), str(ex.trigger), when, duration, code))
    print_table(rows)


def _builtins(run: StoredRun) -> dict[str, object]:
    import msgspec

    data: dict[str, object] = msgspec.to_builtins(run.execution)
    return data
