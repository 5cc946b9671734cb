"""``squ alerts``: the fleet's alerts (unacknowledged by default) and acknowledging them.

``squ alerts [--all] [--job J] [--kind K] [--json]`` lists alerts from every
agent that answers, newest first, with how each was delivered; agents that do
not answer are named on stderr ("db2: down (...)"), which is also how the
console notices what no agent can report. ``squ alerts --ack ID[@AGENT]``
acknowledges (the agent audits who did it); without ``@AGENT`` every agent
that holds that id acknowledges it.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

import msgspec

from console.commands._common import add_on, print_json, remote_message, say_error, with_fleet
from shared.alerts import Alert, AlertAck, AlertsQuery, summary
from shared.enums import AlertKind
from shared.errors import SquError
from shared.textsafe import inert

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

__all__ = ["add_parser", "delivery_text", "run"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("alerts", help="list alerts (unacknowledged by default), or --ack them")
    p.add_argument("--all", action="store_true", help="acknowledged ones too")
    p.add_argument("--job", help="only this job's alerts")
    p.add_argument("--kind", choices=[k.value for k in AlertKind], help="only this kind")
    p.add_argument("--limit", type=int, default=100, help="at most this many per agent")
    p.add_argument(
        "--ack", action="append", default=[], metavar="ID[@AGENT]", help="acknowledge (repeatable)"
    )
    p.add_argument("--json", action="store_true", help="print the alerts as JSON")
    add_on(p)
    p.set_defaults(func=run)


def delivery_text(alert: Alert) -> str:
    """How an alert went out, in a few words: "hook sent, mail pending (2 tries)"."""
    if not alert.deliveries:
        return "-"
    parts = []
    for d in alert.deliveries:
        tries = f" ({d.attempts} tries)" if d.state != "sent" and d.attempts else ""
        parts.append(f"{d.channel} {d.state}{tries}")
    return ", ".join(parts)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def run(args: argparse.Namespace) -> int:
    if args.ack:
        return _ack(args)
    query = AlertsQuery(
        job=args.job,
        kind=AlertKind(args.kind) if args.kind else None,
        unacked=not args.all,
        limit=args.limit,
    )

    async def body(fleet: Fleet, up: list[str]) -> int:
        found: list[tuple[str, Alert]] = []
        unacked = 0
        for agent in up:
            result = await fleet.call(agent, "alerts.list", query)
            found += [(agent, a) for a in result.alerts]
            unacked += result.unacked
        found.sort(key=lambda pair: pair[1].created_at, reverse=True)
        if args.json:
            print_json([{"agent": agent, **msgspec.to_builtins(a)} for agent, a in found])
            return 0
        rows = [
            [
                f"{a.id}@{agent}",
                _when(a.created_at),
                a.kind.value,
                delivery_text(a),
                "acked by " + a.acked_by if a.acked_at is not None else "",
                # Reasons carry error text from processes: never let it drive the terminal.
                inert(summary(a)),
            ]
            for agent, a in found
        ]
        _table(["ALERT", "WHEN", "KIND", "DELIVERY", "ACK", "SUMMARY"], rows)
        print(f"{unacked} unacknowledged on {len(up)} agent(s)")
        return 0

    return with_fleet(args, body)


def _ack(args: argparse.Namespace) -> int:
    wanted: list[tuple[str, str | None]] = []
    for item in args.ack:
        alert_id, _, agent = item.rpartition("@") if "@" in item else (item, "", "")
        wanted.append((alert_id, agent or None))
    only = sorted({a for _, a in wanted if a}) if all(a for _, a in wanted) else []

    async def body(fleet: Fleet, up: list[str]) -> int:
        code = 0
        for alert_id, agent in wanted:
            targets = [agent] if agent else up
            done = []
            for name in targets:
                try:
                    await fleet.call(name, "alerts.ack", AlertAck(ids=(alert_id,)))
                except SquError as exc:
                    if getattr(exc, "remote_code", "") == "not_found" and not agent:
                        continue  # asked everywhere: the agents that lack it say nothing
                    say_error("alerts", remote_message(exc))
                    code = 2
                    continue
                done.append(name)
            if done:
                print(f"{alert_id}: acknowledged on {', '.join(done)}")
            elif code == 0:
                say_error("alerts", f"no alert {alert_id!r} on {', '.join(targets)}")
                code = 2
        return code

    return with_fleet(args, body, only=only)


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
