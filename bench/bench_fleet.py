"""1,000 agents connected to one console: memory per link, fan-out trigger p99.

squ-cron: the console's own ``Fleet`` with 1,000 agents in its inventory,
served by 4 real agent server processes (simulated agents in a few
processes), one ``Link`` each; the console's RSS growth per link, and the
time until every agent has answered a request sent to all of them at once.
References: raw websockets 17 client links to echo peers, without and with
per-message deflate (the numbers behind the compression decision), and the
raw fan-out of one request to 1,000 echo links. Goals: <= 64 KiB per link;
fan-out p99 < 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

import psutil

from bench.core import BenchError, Context, NotBuilt, Row, fmt_ms, judge_max, percentile, ratio
from bench.refs.ws import fanout_rtt, link_memory
from bench.refs.ws_peer import raise_fd_limit
from bench.server import agent_server, new_key

__all__ = ["run"]

LINK_GOAL_KIB = 64.0
FANOUT_GOAL_S = 1.0
KIB = 1024


def squ_fleet(ctx: Context, count: int, *, servers: int = 4) -> tuple[float, list[float], str]:
    """(bytes per link, fan-out reply times, note) for the console's own ``Fleet``.

    ``count`` agents (``servers`` real agent server processes, each answering as
    many agents) in one inventory; the ``Fleet`` runs one ``Link`` per agent as
    the TUI does (subscribed, keeping a shared mirror); once every link is up,
    the console's RSS growth per link, then ``agent.info`` sent through
    ``Fleet.call`` to every agent at once.
    """
    try:
        from console.config import AgentEntry, Inventory
        from console.fleet.fleet import Fleet
        from console.fleet.mirror import Mirror
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"the console fleet ({exc.name})") from None
    from shared.protocol import Empty

    raise_fd_limit()
    me = psutil.Process()
    key = new_key()
    work = ctx.scratch("fleet-console")

    async def main(urls: list[str]) -> tuple[float, list[float], int]:
        entries = tuple(
            AgentEntry(name=f"agent-{i:04d}", url=urls[i % len(urls)]) for i in range(count)
        )
        inventory = Inventory(path=work / "fleet.toml", agents=entries)
        mirror = Mirror.open(work / "mirror.db")
        try:
            gc.collect()
            await asyncio.sleep(0.2)
            before = me.memory_info().rss
            fleet = Fleet(inventory, key=key, mirror=mirror, save_pins=False)
            async with fleet:
                states = await fleet.settle(ctx.pick(90.0, 45.0))
                up = sum(1 for s in states if s.link.value == "up")
                await asyncio.sleep(1.0)  # first sync of each link (empty stores) settles
                gc.collect()
                per_link = (me.memory_info().rss - before) / count

                async def one(name: str, started: float) -> float:
                    await fleet.call(name, "agent.info", Empty())
                    return time.perf_counter() - started

                started = time.perf_counter()
                times = list(await asyncio.gather(*(one(e.name, started) for e in entries)))
            return per_link, times, up
        finally:
            mirror.close()

    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(agent_server(ctx.scratch(f"fleet-server-{i}"), rows=0, key=key)).url
            for i in range(servers)
        ]
        ctx.log(f"console Fleet of {count} agents over {servers} agent server processes")
        per_link, times, up = asyncio.run(main(urls))
    if up < count:
        raise BenchError(f"only {up} of {count} links came up")
    note = (
        f"console.fleet.Fleet, {count} links (subscribed, shared mirror) to {servers} real "
        f"agent server processes; fan-out = agent.info via Fleet.call to all at once"
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
    fan99 = percentile(fan, 99)
    squ99 = None if squ_fan is None else percentile(squ_fan, 99)
    return [
        Row(
            metric=f"console memory per agent link ({count:,} agents)",
            squ="not built yet" if per_link is None else f"{per_link:.1f} KiB",
            reference=f"raw websockets {plain:.1f} KiB (deflate {deflate:.1f} KiB)",
            ratio=ratio(per_link, plain),
            goal=f"<= {LINK_GOAL_KIB:.0f} KiB",
            passed=judge_max(per_link, LINK_GOAL_KIB),
            note=note or f"deflate costs {deflate - plain:.1f} KiB more per link",
        ),
        Row(
            metric=f"fan-out trigger to {count:,} agents, p99",
            squ="not built yet" if squ99 is None else fmt_ms(squ99),
            reference=f"raw websockets {fmt_ms(fan99)}",
            ratio=ratio(squ99, fan99),
            goal=f"< {FANOUT_GOAL_S:.0f} s",
            passed=None if squ99 is None else squ99 < FANOUT_GOAL_S,
            note=note,
        ),
    ]
