"""``squ approve ID``: read a request's run intent in full, sign it, and send the approval.

The console signs ``intent_bytes`` with the operator's key file (SSHSIG,
namespace ``approval@squ-cron``). For a key in ssh-agent or on a token:
``squ approve ID --print-intent > intent``, then
``ssh-keygen -Y sign -n approval@squ-cron -f KEY.pub intent`` and
``squ approve ID --signature intent.sig``. The agent checks everything again
(docs/approvals.md); a refusal is printed with its reason and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.commands._common import add_on, context, remote_message, with_fleet
from console.commands.approvals import intent_text, locate_request, split_request
from shared.approvals import ApprovalSign, intent_bytes
from shared.identity import APPROVAL_NAMESPACE, sign

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("approve", help="sign and send the approval of a pending request")
    p.add_argument("request", metavar="ID", help="request id (or ID@AGENT)")
    p.add_argument(
        "--print-intent",
        action="store_true",
        help="only print the exact bytes to sign (for ssh-keygen -Y sign) and exit",
    )
    p.add_argument(
        "--signature", type=Path, metavar="FILE", help="send this armored SSHSIG signature"
    )
    p.add_argument(
        "--ssh-agent",
        action="store_true",
        help="sign through ssh-agent ($SSH_AUTH_SOCK) with the operator key (its .pub names it)",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the intent first")
    add_on(p, "the agent that holds the request")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request_id, agent = split_request(args.request)
    only = [agent] if agent else list(args.on)
    signature_text = args.signature.read_text() if args.signature is not None else None

    async def body(fleet: Fleet, up: list[str]) -> int:
        from console.fleet.link import AgentError

        where, info = await locate_request(fleet, request_id, up)
        if args.print_intent:
            sys.stdout.buffer.write(intent_bytes(info.intent))
            sys.stdout.flush()
            return 0
        if not args.quiet:
            print(intent_text(info, where), file=sys.stderr)
        signature = signature_text
        if signature is None and args.ssh_agent:
            signature = await asyncio.to_thread(_agent_signature, args, intent_bytes(info.intent))
        if signature is None:
            from console.keys import load_operator_key

            ctx = context(args)
            key = load_operator_key(ctx.inventory, ctx.config_dir)
            signature = sign(key, APPROVAL_NAMESPACE, intent_bytes(info.intent))
        try:
            done = await fleet.call(
                where, "approvals.approve", ApprovalSign(intent=info.intent, signature=signature)
            )
        except AgentError as exc:
            if exc.remote_code != "approval_refused":
                raise
            print(f"squ approve: {remote_message(exc)}", file=sys.stderr)
            return 1
        print(f"{where}: approved {request_id}; execution {done.intent.execution_id} is queued")
        return 0

    return with_fleet(args, body, only=only)


def _agent_signature(args: argparse.Namespace, data: bytes) -> str:
    """Sign ``data`` through ssh-agent with the operator key's public half (its .pub file)."""
    from console.keys import find_key_path
    from console.sshagent import SshAgentError, sign_with_agent

    sock = os.environ.get("SSH_AUTH_SOCK")
    if not sock:
        raise SshAgentError("SSH_AUTH_SOCK is not set (is ssh-agent running?)")
    ctx = context(args)
    path = find_key_path(ctx.inventory, ctx.config_dir)
    pub = path.with_name(path.name + ".pub")
    line = pub.read_text().strip() if pub.exists() else None
    return sign_with_agent(sock, line, APPROVAL_NAMESPACE, data)
