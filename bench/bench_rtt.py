"""Request round trip to an agent vs a raw websockets echo, on loopback.

squ-cron: sequential requests over the console's own link (logged in) to a real
agent server (``bench/server.py``: ``agentd.server`` over a real store) in
another process: ``agent.info`` (no store access) and ``jobs.list`` (a store
read through the writer thread). Reference: a raw websockets 17 echo server in
another process, compression off. No goal was set: the ratio says what our
protocol, login state and store hop cost.
"""

from __future__ import annotations

import asyncio
import time

from bench.core import BenchError, Context, Row, fmt_ms, percentile, ratio
from bench.refs.ws import echo_rtt
from bench.server import agent_server, console_link

__all__ = ["run", "squ_rtt"]


def squ_rtt(ctx: Context, count: int) -> dict[str, list[float]]:
    """Round trip times (s) of ``count`` sequential requests per method, over the
    console's own link (``console.fleet.link.Link.call``)."""
    from shared.protocol import Empty

    async def main(url: str, key: object) -> dict[str, list[float]]:
        async with console_link(url, key) as link:
            out: dict[str, list[float]] = {}
            for method in ("agent.info", "jobs.list"):
                await link.call(method, Empty())  # warm
                times = []
                for _ in range(count):
                    started = time.perf_counter()
                    await link.call(method, Empty())
                    times.append(time.perf_counter() - started)
                out[method] = times
            return out

    with agent_server(ctx.scratch("rtt-server"), rows=100) as server:
        return asyncio.run(main(server.url, server.key))


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(1000, 300)
    ctx.log(f"raw websockets echo: {count} round trips")
    raw = echo_rtt(count)
    ctx.log(f"squ-cron agent server: {count} x agent.info, {count} x jobs.list")
    squ: dict[str, list[float]] | None
    note = ""
    try:
        squ = squ_rtt(ctx, count)
    except BenchError as exc:
        squ, note = None, str(exc)
    rows = []
    for method, what in (("agent.info", "no store"), ("jobs.list", "store read")):
        for pct in (50, 99):
            times = None if squ is None else squ[method]
            value = None if times is None else percentile(times, pct)
            rows.append(
                Row(
                    metric=f"request round trip p{pct}, {method} ({what})",
                    squ="not built yet" if value is None else fmt_ms(value),
                    reference=f"raw websockets echo {fmt_ms(percentile(raw, pct))}",
                    ratio=ratio(value, percentile(raw, pct)),
                    goal="info (no goal set)",
                    passed=None,
                    note=note or f"{count} sequential requests over console.fleet.link.Link",
                )
            )
    return rows
