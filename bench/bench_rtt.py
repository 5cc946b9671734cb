"""Request round trip to an agent vs a raw websockets echo, on loopback.

squ-cron: sequential requests (a cheap read such as ``ping``/``status``)
over an authenticated console link to a real agent. Reference: a raw
websockets 17 echo server in another process, same message size,
compression off. No goal was set: the ratio says what our protocol costs.
"""

from __future__ import annotations

import importlib.util

from bench.core import BenchError, Context, NotBuilt, Row, fmt_ms, percentile, ratio
from bench.refs.ws import echo_rtt

__all__ = ["run", "squ_rtt"]


def squ_rtt(ctx: Context, count: int) -> list[float]:
    """Round trip times (s) of ``count`` sequential requests to a real agent."""
    for module in ("agentd.server", "console.fleet.link"):
        if importlib.util.find_spec(module) is None:
            raise NotBuilt(module)
    raise NotBuilt("the round-trip benchmark wiring (agent server + console link)")


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(3000, 500)
    ctx.log(f"raw websockets echo: {count} round trips")
    raw = echo_rtt(count)
    squ: list[float] | None
    note = ""
    try:
        squ = squ_rtt(ctx, count)
    except BenchError as exc:
        squ, note = None, str(exc)
    rows = []
    for pct in (50, 99):
        value = None if squ is None else percentile(squ, pct)
        rows.append(
            Row(
                metric=f"request round trip p{pct}",
                squ="not built yet" if value is None else fmt_ms(value),
                reference=f"raw websockets echo {fmt_ms(percentile(raw, pct))}",
                ratio=ratio(value, percentile(raw, pct)),
                goal="info (no goal set)",
                passed=None,
                note=note or f"{count} sequential requests",
            )
        )
    return rows
