"""``squ approvals``: approval requests across the fleet (pending by default), and what they ask.

Also home of what ``squ approve`` / ``squ reject`` share: finding the agent that
holds a request (``ID`` or ``ID@AGENT``) and ``intent_text(info)``, the run
intent in full (command, targets, parameters, the diff from the last
approved definition) that an approver reads before signing; the console's
approvals view shows the same text.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import msgspec

from console.commands._common import add_on, print_json, with_fleet
from console.intent import intent_text, params_text, when_text
from shared.approvals import ApprovalId, ApprovalInfo, ApprovalsQuery, ApprovalState
from shared.errors import NotFound

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

__all__ = ["ApprovalNotFound", "intent_text", "locate_request"]


class ApprovalNotFound(NotFound):
    def __init__(self, request_id: str, agents: list[str]) -> None:
        super().__init__(
            f"no approval request {request_id!r} on {', '.join(agents) or 'any agent'}",
            request_id=request_id,
        )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("approvals", help="list approval requests (pending by default)")
    p.add_argument(
        "--state",
        choices=[s.value for s in ApprovalState] + ["all"],
        default=ApprovalState.PENDING.value,
        help="which requests (default: pending)",
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many per agent")
    p.add_argument("--json", action="store_true", help="print the requests as JSON")
    add_on(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    state = None if args.state == "all" else ApprovalState(args.state)

    async def body(fleet: Fleet, up: list[str]) -> int:
        found: list[tuple[str, ApprovalInfo]] = []
        for agent in up:
            result = await fleet.call(
                agent, "approvals.list", ApprovalsQuery(state=state, limit=args.limit)
            )
            found += [(agent, info) for info in result.approvals]
        found.sort(key=lambda pair: pair[1].intent.request_id, reverse=True)
        if args.json:
            print_json([{"agent": agent, **msgspec.to_builtins(info)} for agent, info in found])
            return 0
        rows = [
            [
                f"{info.intent.request_id}@{agent}",
                info.intent.job,
                info.state.value,
                info.intent.requester,
                when_text(info.intent.expires_at),
                params_text(info.intent.params),
            ]
            for agent, info in found
        ]
        _table(["REQUEST", "JOB", "STATE", "REQUESTER", "EXPIRES", "PARAMS"], rows)
        if not rows:
            print(f"no {args.state} approval requests")
        return 0

    return with_fleet(args, body)


def split_request(text: str) -> tuple[str, str]:
    """``ID@AGENT`` -> (ID, AGENT); a bare ID -> (ID, "")."""
    request_id, _, agent = text.partition("@")
    return request_id, agent


async def locate_request(fleet: Fleet, request_id: str, up: list[str]) -> tuple[str, ApprovalInfo]:
    """The up agent holding ``request_id`` and the request (ids are ULIDs: unique)."""
    from console.fleet.link import AgentError

    for agent in up:
        try:
            info: ApprovalInfo = await fleet.call(agent, "approvals.get", ApprovalId(id=request_id))
        except AgentError as exc:
            if exc.remote_code == "not_found":
                continue
            raise
        return agent, info
    raise ApprovalNotFound(request_id, up)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
