"""The run intent as an approver reads it before signing: command, targets, parameters, diff.

Pure text (no Rich markup: everything here is data typed by other people);
``squ approve`` prints it and the console's Approvals view shows it.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import Any

import msgspec

from shared.approvals import ApprovalInfo

__all__ = ["definition_diff", "intent_text", "params_text", "when_text"]


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


def intent_text(info: ApprovalInfo, agent: str, tz: dt.tzinfo | None = None) -> str:
    """The run intent in full, as an approver should read it before signing."""
    intent = info.intent
    job = info.definition
    lines = [
        f"request   {intent.request_id} on {agent} ({info.state.value})",
        f"job       {intent.job}  definition {intent.definition_hash[:16]}",
        f"execution {intent.execution_id}",
        f"requester {intent.requester}" + (f"  — {info.comment}" if info.comment else ""),
        f"expires   {when_text(intent.expires_at, tz)}",
        f"params    {params_text(intent.params) or '(none)'}",
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
    fields = {k: v for k, v in msgspec.to_builtins(job).items() if v not in (None, {}, [], (), "")}
    return msgspec.json.format(msgspec.json.encode(fields), indent=2).decode().splitlines()


def when_text(ts: float, tz: dt.tzinfo | None = None) -> str:
    """A wall time in ``tz`` (the TUI's configured zone; default the machine's), zone named."""
    moment = dt.datetime.fromtimestamp(ts, tz) if tz is not None else dt.datetime.fromtimestamp(ts)
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def params_text(params: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(params.items()))
