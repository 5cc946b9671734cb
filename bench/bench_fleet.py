"""1,000 agents connected to one console: memory per link, fan-out trigger p99.

squ-cron: 1,000 logged-in protocol links to real agent servers (4 processes),
the client's RSS growth per link, and the time until every agent has answered
a request sent to all of them at once (the console's own link is used once
it lands; until then the protocol owner's real test client, as the note
says). References: raw websockets 17 client links to echo peers, without and
with per-message deflate (the numbers behind the compression decision), and
the raw fan-out of one request to 1,000 echo links. Goals: <= 64 KiB per
link; fan-out p99 < 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

import psutil

from bench.core import BenchError, Context, Row, fmt_ms, judge_max, percentile, ratio
from bench.refs.ws import fanout_rtt, link_memory
from bench.refs.ws_peer import raise_fd_limit
from bench.server import agent_server, client_class

__all__ = ["run"]

LINK_GOAL_KIB = 64.0
FANOUT_GOAL_S = 1.0
KIB = 1024


def squ_fleet(ctx: Context, count: int, *, servers: int = 4) -> tuple[float, list[float], str]:
    """(bytes per link, fan-out reply times, note) with real agent servers.

    Until ``console.fleet.link`` lands, the client side is the protocol owner's
    real client (``tests.agentd.wsclient.Client``: websockets + the sans-I/O
    ``Connection``, SSHSIG login), one per link, in this process; the far ends
    are ``servers`` real agent server processes. The note says which was used.
    """
    from shared.protocol import Empty

    raise_fd_limit()
    Client = client_class()
    me = psutil.Process()

    async def main(targets: list[tuple[str, object]]) -> tuple[float, list[float]]:
        gc.collect()
        await asyncio.sleep(0.2)
        before = me.memory_info().rss
        links: list[Any] = []
        try:
            for start in range(0, count, 50):
                links += await asyncio.gather(
                    *(
                        Client.login(*targets[i % len(targets)])
                        for i in range(start, min(count, start + 50))
                    )
                )
            await asyncio.gather(*(link.call("agent.info", Empty()) for link in links))
            gc.collect()
            await asyncio.sleep(0.5)
            per_link = (me.memory_info().rss - before) / count

            async def one(link: Any, started: float) -> float:
                await link.call("agent.info", Empty())
                return time.perf_counter() - started

            started = time.perf_counter()
            times = list(await asyncio.gather(*(one(link, started) for link in links)))
            return per_link, times
        finally:
            await asyncio.gather(*(link.close() for link in links), return_exceptions=True)

    with contextlib.ExitStack() as stack:
        targets = []
        for i in range(servers):
            server = stack.enter_context(agent_server(ctx.scratch(f"fleet-server-{i}"), rows=0))
            targets.append((server.url, server.key))
        ctx.log(f"{count} logged-in links to {servers} agent server processes")
        per_link, times = asyncio.run(main(targets))
    note = (
        f"client: tests.agentd.wsclient.Client (console.fleet.link not built yet); "
        f"{count} links over {servers} real agent servers; fan-out = agent.info to all at once"
    )
    return per_link, times, note


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(1000, 300)
    ctx.log(f"raw websockets: {count} client links, no compression")
    plain = link_memory(count, deflate=False) / KIB
    ctx.log(f"raw websockets: {count} client links, per-message deflate")
    deflate = link_memory(count, deflate=True) / KIB
    ctx.log(f"raw websockets: one request fanned out to {count} links")
    fan = fanout_rtt(count)
    per_link: float | None
    squ_fan: list[float] | None
    try:
        per_link_b, squ_fan, note = squ_fleet(ctx, count)
        per_link = per_link_b / KIB
    except BenchError as exc:
        per_link, squ_fan, note = None, None, str(exc)
    # Measured through the protocol's test client, not the console's link: shown, not judged.
    proxy = "console.fleet.link not built yet" in note
    fan99 = percentile(fan, 99)
    squ99 = None if squ_fan is None else percentile(squ_fan, 99)
    return [
        Row(
            metric=f"console memory per agent link ({count:,} agents)",
            squ="not built yet" if per_link is None else f"{per_link:.1f} KiB",
            reference=f"raw websockets {plain:.1f} KiB (deflate {deflate:.1f} KiB)",
            ratio=ratio(per_link, plain),
            goal=f"<= {LINK_GOAL_KIB:.0f} KiB",
            passed=None if proxy else judge_max(per_link, LINK_GOAL_KIB),
            note=note or f"deflate costs {deflate - plain:.1f} KiB more per link",
        ),
        Row(
            metric=f"fan-out trigger to {count:,} agents, p99",
            squ="not built yet" if squ99 is None else fmt_ms(squ99),
            reference=f"raw websockets {fmt_ms(fan99)}",
            ratio=ratio(squ99, fan99),
            goal=f"< {FANOUT_GOAL_S:.0f} s",
            passed=None if squ99 is None or proxy else squ99 < FANOUT_GOAL_S,
            note=note,
        ),
    ]
