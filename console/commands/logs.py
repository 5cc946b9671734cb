"""``squ logs EXEC``: an execution's output; ``--follow`` streams it live until it ends.

stdout pieces go to stdout and stderr pieces to stderr, so ``2>/dev/null``
works as it would on the server. Into a pipe or file the bytes are exact; on
a terminal they are made inert (no escape sequence reaches it).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from console.commands._common import add_on, context, mirror_path, with_fleet, write_output
from console.commands._exec import agents_from_mirror, locate, split_exec

if TYPE_CHECKING:
    from console.fleet.fleet import Fleet


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("logs", help="show an execution's output")
    p.add_argument("execution", metavar="EXEC", help="execution id (or ID@AGENT)")
    add_on(p, "the agent that ran it")
    p.add_argument("-f", "--follow", action="store_true", help="keep streaming until it ends")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    exec_id, agent = split_exec(args.execution)
    only = [agent] if agent else list(args.on)
    if not only:
        exec_id, only = agents_from_mirror(mirror_path(context(args)), exec_id)

    async def body(fleet: Fleet, up: list[str]) -> int:
        where = await locate(fleet, exec_id, up)
        if args.follow:
            async for piece in fleet.follow_log(where, exec_id, 0):
                show(piece.stream, piece.data, piece.dropped_bytes)
            return 0
        cursor = 0
        while True:
            page = await fleet.read_log(where, exec_id, cursor, 0)
            for piece in page.pieces:
                show(piece.stream, piece.data, piece.dropped_bytes)
            if page.is_eof or page.next_offset == cursor:
                return 0
            cursor = page.next_offset

    return with_fleet(args, body, only=only)


def show(stream: str, data: bytes, dropped_bytes: int) -> None:
    if stream == "dropped":
        print(f"[... {dropped_bytes} bytes dropped by the log cap ...]", file=sys.stderr)
    else:
        write_output(stream, data)
