"""``squ audit``: pull every agent's audit log into the console's copy, check it, show it.

Each agent's new entries are fetched with ``audit.since`` and kept only if
they continue the chain the console already holds (console/auditcopy.py); an
agent whose log no longer does is named on stderr and the exit code is 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

import msgspec

from console.commands._common import add_on, context, print_json, with_fleet
from shared.audit import AuditSince

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("audit", help="sync, check and show the agents' audit logs")
    p.add_argument("--action", help="only this action (job.put, approval.approved, ...)")
    p.add_argument("--limit", type=int, default=50, help="show the newest N entries (default 50)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
    add_on(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from console.auditcopy import AUDIT_FILE, AuditCopy

    copy = AuditCopy(context(args).config_dir / AUDIT_FILE)

    async def body(fleet: Fleet, up: list[str]) -> int:
        broken = 0
        for agent in up:

            async def since(seq: int, limit: int, agent: str = agent) -> object:
                return await fleet.call(agent, "audit.since", AuditSince(seq=seq, limit=limit))

            result = await copy.sync_agent(agent, since)  # type: ignore[arg-type]
            if not result.ok:
                broken += 1
                print(f"squ audit: {agent}: AUDIT LOG DIVERGES: {result.why}", file=sys.stderr)
        shown = [
            (agent, e)
            for agent, e in copy.entries(action=args.action, limit=args.limit)
            if agent in up
        ]
        if args.json:
            print_json([{"agent": a, **msgspec.to_builtins(e)} for a, e in shown])
        else:
            for agent, e in shown:
                when = dt.datetime.fromtimestamp(e.at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
                print(f"{when}  {agent}#{e.seq}  {e.actor}  {e.action}  {e.target}  ({e.origin})")
        return 1 if broken else 0

    try:
        return with_fleet(args, body)
    finally:
        copy.close()
