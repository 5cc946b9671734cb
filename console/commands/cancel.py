"""``squ cancel EXEC``: cancel a pending, queued or running execution (SIGTERM, grace, SIGKILL)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from console.commands._common import add_on, context, mirror_path, with_fleet
from console.commands._exec import agents_from_mirror, locate, split_exec

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("cancel", help="cancel an execution")
    p.add_argument("execution", metavar="EXEC", help="execution id (or ID@AGENT)")
    add_on(p, "the agent that runs it")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exec_id, agent = split_exec(args.execution)
    only = [agent] if agent else list(args.on)
    if not only:
        exec_id, only = agents_from_mirror(mirror_path(context(args)), exec_id)

    async def body(fleet: Fleet, up: list[str]) -> int:
        where = await locate(fleet, exec_id, up)
        await fleet.cancel(where, exec_id)
        print(f"{where}: cancelled {exec_id}")
        return 0

    return with_fleet(args, body, only=only)
