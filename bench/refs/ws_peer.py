"""A raw websockets 17 peer in its own process, for the wire references.

``python -m bench.refs.ws_peer MODE [--deflate]`` listens on 127.0.0.1:0,
prints its port on stdout and serves until stdin closes. Modes:

* ``echo``: sends every message back (request round trip floor);
* ``stream``: on ``"N B"`` sends N small records in frames of B, then ``"done"``
  (batched records per second: the wire's own limit);
* ``accept``: holds every connection open (memory per link).
"""

from __future__ import annotations

import asyncio
import resource
import sys

import msgspec
from websockets.asyncio.server import ServerConnection, serve

__all__ = ["RECORD", "main", "raise_fd_limit"]

# One execution-changed record, the size history sync sends.
RECORD = {
    "id": "01JEXEC0000000000000000001",
    "job": "backup",
    "status": "success",
    "seq": 1,
    "started_at": "2026-11-27T18:00:00.010+00:00",
    "finished_at": "2026-11-27T18:00:00.020+00:00",
    "exit_code": 0,
}


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one (1,000 links need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def _stream(ws: ServerConnection) -> None:
    encoder = msgspec.json.Encoder()
    async for message in ws:
        count, batch = (int(x) for x in str(message).split())
        for start in range(0, count, batch):
            n = min(batch, count - start)
            records = [dict(RECORD, seq=start + i + 1) for i in range(n)]
            await ws.send(encoder.encode(records).decode())
        await ws.send("done")


async def _accept(ws: ServerConnection) -> None:
    await ws.wait_closed()


async def _serve(mode: str, deflate: bool) -> None:
    handler = {"echo": _echo, "stream": _stream, "accept": _accept}[mode]
    async with serve(
        handler,
        "127.0.0.1",
        0,
        compression="deflate" if deflate else None,
        max_size=16 * 2**20,
        max_queue=16,
        ping_interval=None,
        open_timeout=30,
        backlog=2048,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(port, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)  # until our parent closes stdin


def main(argv: list[str]) -> None:
    raise_fd_limit()
    asyncio.run(_serve(argv[0], "--deflate" in argv))


if __name__ == "__main__":
    main(sys.argv[1:])
