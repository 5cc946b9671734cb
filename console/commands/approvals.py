"""``squ approvals``: approval requests across the fleet (pending by default), and what they ask.

Also home of what ``squ approve`` / ``squ reject`` share: finding the agent that
holds a request (``ID`` or ``ID@AGENT``) and ``intent_text(info)``, the run
intent in full (command, targets, parameters, the diff from the last
approved definition) that an approver reads before signing; the console's
approvals view shows the same text.
"""

from __future__ import annotations

import argparse
import datetime as dt
import difflib
from typing import TYPE_CHECKING, Any

import msgspec

from console.commands._common import add_on, print_json, with_fleet
from shared.approvals import ApprovalId, ApprovalInfo, ApprovalsQuery, ApprovalState
from shared.errors import NotFound

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet

__all__ = ["ApprovalNotFound", "definition_diff", "intent_text", "locate_request"]


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
                _when(info.intent.expires_at),
                _params(info.intent.params),
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


def definition_diff(info: ApprovalInfo) -> list[str]:
    """Unified diff lines from the last approved definition to the requested one."""
    if info.definition is None:
        return []
    new = _lines(info.definition)
    old = _lines(info.last_approved) if info.last_approved is not None else []
    return list(
        difflib.unified_diff(
            old,
            new,
            "last approved" if info.last_approved is not None else "(never approved)",
            "requested",
            lineterm="",
        )
    )


def intent_text(info: ApprovalInfo, agent: str) -> str:
    """The run intent in full, as an approver should read it before signing."""
    intent = info.intent
    job = info.definition
    lines = [
        f"request   {intent.request_id} on {agent} ({info.state.value})",
        f"job       {intent.job}  definition {intent.definition_hash[:16]}",
        f"execution {intent.execution_id}",
        f"requester {intent.requester}" + (f"  — {info.comment}" if info.comment else ""),
        f"expires   {_when(intent.expires_at)}",
        f"params    {_params(intent.params) or '(none)'}",
    ]
    if job is not None:
        lines += [
            f"command   {job.command if job.command is not None else job.script}",
            f"targets   {', '.join(job.targets) or agent}",
            f"run as    {job.user or 'root'}"
            + (f" in {job.working_dir}" if job.working_dir else ""),
        ]
    diff = definition_diff(info)
    if diff and info.last_approved is not None:
        lines += ["", "changes since the last approved run:", *diff]
    elif info.last_approved is None:
        lines += ["", "first approval of this job on this agent"]
    else:
        lines += ["", "definition unchanged since the last approved run"]
    return "\n".join(lines)


def _lines(job: Any) -> list[str]:
    fields = {k: v for k, v in msgspec.to_builtins(job).items() if v not in (None, {}, [], "")}
    return msgspec.json.format(msgspec.json.encode(fields), indent=2).decode().splitlines()


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _params(params: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
