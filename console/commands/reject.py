"""``squ reject ID --comment TEXT``: reject a pending approval request; the run is cancelled."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from console.commands._common import add_on, remote_message, with_fleet
from console.commands.approvals import locate_request, split_request
from shared.approvals import ApprovalWithdraw

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reject", help="reject a pending approval request with a comment")
    p.add_argument("request", metavar="ID", help="request id (or ID@AGENT)")
    p.add_argument("--comment", "-m", required=True, help="why (recorded and shown)")
    p.add_argument(
        "--cancel",
        action="store_true",
        help="withdraw your own request instead of rejecting someone else's",
    )
    add_on(p, "the agent that holds the request")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request_id, agent = split_request(args.request)
    only = [agent] if agent else list(args.on)
    method = "approvals.cancel" if args.cancel else "approvals.reject"

    async def body(fleet: Fleet, up: list[str]) -> int:
        from console.fleet.link import AgentError

        where, _ = await locate_request(fleet, request_id, up)
        try:
            await fleet.call(where, method, ApprovalWithdraw(id=request_id, comment=args.comment))
        except AgentError as exc:
            if exc.remote_code != "approval_refused":
                raise
            print(f"squ {args.command}: {remote_message(exc)}", file=sys.stderr)
            return 1
        verb = "cancelled" if args.cancel else "rejected"
        print(f"{where}: {verb} {request_id}")
        return 0

    return with_fleet(args, body, only=only)
