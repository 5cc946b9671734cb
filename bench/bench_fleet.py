"""1,000 agents connected to one console: memory per link, fan-out trigger p99.

squ-cron: the console's fleet client linked to 1,000 simulated agents (a few
processes), its RSS growth per link, and the time until every agent has
answered a trigger sent to all of them. References: raw websockets 17 client
links to echo peers, without and with per-message deflate (the deflate
figure is what "decide with numbers" is about), and the raw fan-out of one
request to 1,000 echo links. Goals: <= 64 KiB per link; fan-out p99 < 1 s.
"""

from __future__ import annotations

import importlib.util

from bench.core import BenchError, Context, NotBuilt, Row, fmt_ms, judge_max, percentile, ratio
from bench.refs.ws import fanout_rtt, link_memory

__all__ = ["run"]

LINK_GOAL_KIB = 64.0
FANOUT_GOAL_S = 1.0
KIB = 1024


def squ_fleet(ctx: Context, count: int) -> tuple[float, list[float], str]:
    """(bytes per link, fan-out reply times, note) for the console's fleet client."""
    for module in ("console.fleet.link", "agentd.server"):
        if importlib.util.find_spec(module) is None:
            raise NotBuilt(module)
    raise NotBuilt("the fleet benchmark wiring (simulated agents + console fleet)")


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
