"""``squ-agentd logs EXEC``: an execution's output, from its run dir (no agent needed).

Both streams in the order they were written, or one with ``--stream``.
``--follow`` keeps printing until the execution ends. Job output is hostile
text: on a terminal it is decoded and stripped of control sequences
(``shared.textsafe``); into a pipe or file it is written as the job's bytes.
Dropped output (beyond ``max_log_bytes``) is announced on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import BinaryIO

from agentd import logs as joblogs
from agentd.commands._common import add_data_dir, data_dir_of
from shared.logframe import Frame, Kind, Stream
from shared.textsafe import inert_bytes

_STREAM = {"stdout": Stream.STDOUT, "stderr": Stream.STDERR}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("logs", help="print an execution's output")
    add_data_dir(parser)
    parser.add_argument("execution", help="the execution id")
    parser.add_argument("--stream", choices=["stdout", "stderr"], help="only this stream")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the execution ends"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, like cat.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    data_dir = data_dir_of(args)
    out = sys.stdout.buffer
    only = _STREAM.get(args.stream) if args.stream else None
    safe = sys.stdout.isatty()
    if args.follow:
        asyncio.run(_follow(data_dir, args.execution, only, out, safe))
        return 0
    offset = 0
    while True:
        page = joblogs.read_log(data_dir, args.execution, stream=args.stream, offset=offset)
        for frame in page.frames:
            _emit(frame, only, out, safe)
        offset = page.next_offset
        if page.at_end or not page.frames:
            break
    out.flush()
    return 0


async def _follow(
    data_dir: object, exec_id: str, only: Stream | None, out: BinaryIO, safe: bool
) -> None:
    async for frame in joblogs.follow(data_dir, exec_id):  # type: ignore[arg-type]
        _emit(frame, only, out, safe)
        out.flush()


def _emit(frame: Frame, only: Stream | None, out: BinaryIO, safe: bool) -> None:
    if frame.kind is Kind.DROPPED:
        total, _stdout, _stderr = frame.dropped
        out.flush()
        print(f"[... {total} bytes of output dropped (max_log_bytes) ...]", file=sys.stderr)
        return
    if frame.kind is not Kind.DATA or (only is not None and frame.stream is not only):
        return
    out.write(inert_bytes(frame.data).encode() if safe else frame.data)
