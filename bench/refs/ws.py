"""Wire references: raw websockets 17 on loopback, peer in another process.

* ``echo_rtt``: sequential request round trips of a small JSON message;
* ``batched_record_rate``: records per second when frames carry 100 each;
* ``link_memory``: client RSS growth per open connection, with and without
  per-message deflate (what 1,000 agent links cost a console).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import psutil
from websockets.asyncio.client import connect

from bench.refs.ws_peer import RECORD, raise_fd_limit

__all__ = ["batched_record_rate", "echo_rtt", "fanout_rtt", "link_memory", "peer"]


@contextlib.contextmanager
def peer(mode: str, *, deflate: bool = False) -> Iterator[int]:
    """Run a ``ws_peer`` process; yields its port; stops it on exit."""
    argv = [sys.executable, "-m", "bench.refs.ws_peer", mode]
    if deflate:
        argv.append("--deflate")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def _client(port: int, *, deflate: bool = False) -> AsyncIterator[object]:
    async with connect(
        f"ws://127.0.0.1:{port}",
        compression="deflate" if deflate else None,
        max_size=16 * 2**20,
        max_queue=16,
        ping_interval=None,
        open_timeout=30,
    ) as ws:
        yield ws


def echo_rtt(count: int) -> list[float]:
    """Round trip times (s) of ``count`` sequential small requests."""
    request = msgspec.json.encode({"id": 1, "method": "ping", "params": {}}).decode()

    async def main() -> list[float]:
        with peer("echo") as port:
            async with _client(port) as ws:
                times = []
                for _ in range(count):
                    started = time.perf_counter()
                    await ws.send(request)  # type: ignore[attr-defined]
                    await ws.recv()  # type: ignore[attr-defined]
                    times.append(time.perf_counter() - started)
                return times

    return asyncio.run(main())


def batched_record_rate(count: int, *, batch: int = 100) -> float:
    """Records per second received and decoded, ``batch`` per frame."""
    decoder = msgspec.json.Decoder(list[dict[str, object]])

    async def main() -> float:
        with peer("stream") as port:
            async with _client(port) as ws:
                started = time.perf_counter()
                await ws.send(f"{count} {batch}")  # type: ignore[attr-defined]
                got = 0
                while True:
                    frame = await ws.recv()  # type: ignore[attr-defined]
                    if frame == "done":
                        break
                    got += len(decoder.decode(frame))
                elapsed = time.perf_counter() - started
                assert got == count, (got, count)
                return count / elapsed

    return asyncio.run(main())


def link_memory(count: int, *, deflate: bool) -> float:
    """Client RSS growth (bytes) per open link, after one small message each."""
    raise_fd_limit()
    me = psutil.Process()
    message = msgspec.json.encode(RECORD).decode()

    async def main() -> float:
        with peer("accept", deflate=deflate) as port:
            async with contextlib.AsyncExitStack() as stack:
                await asyncio.sleep(0.1)
                before = me.memory_info().rss
                links = []
                for start in range(0, count, 100):
                    links += await asyncio.gather(
                        *(
                            stack.enter_async_context(_client(port, deflate=deflate))
                            for _ in range(start, min(count, start + 100))
                        )
                    )
                # One message each, so compression state is really allocated.
                await asyncio.gather(*(ws.send(message) for ws in links))  # type: ignore[attr-defined]
                await asyncio.sleep(0.3)
                after = me.memory_info().rss
                return (after - before) / count

    return asyncio.run(main())


def fanout_rtt(count: int, *, peers: int = 4) -> list[float]:
    """One request sent at once to each of ``count`` links: reply times (s).

    The far ends are raw echo peers, ``count`` links spread over ``peers``
    processes: the floor for a console triggering a job on 1,000 agents.
    """
    raise_fd_limit()
    request = msgspec.json.encode({"id": 1, "method": "run", "params": {"job": "x"}}).decode()

    async def main() -> list[float]:
        with contextlib.ExitStack() as procs:
            ports = [procs.enter_context(peer("echo")) for _ in range(peers)]
            async with contextlib.AsyncExitStack() as stack:
                links = []
                for start in range(0, count, 100):
                    links += await asyncio.gather(
                        *(
                            stack.enter_async_context(_client(ports[i % peers]))
                            for i in range(start, min(count, start + 100))
                        )
                    )

                async def one(ws: object, started: float) -> float:
                    await ws.send(request)  # type: ignore[attr-defined]
                    await ws.recv()  # type: ignore[attr-defined]
                    return time.perf_counter() - started

                started = time.perf_counter()
                return list(await asyncio.gather(*(one(ws, started) for ws in links)))

    return asyncio.run(main())
