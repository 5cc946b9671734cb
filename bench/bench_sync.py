"""History sync agent -> console on loopback, in rows per second.

squ-cron: an agent store holding N executions, a console mirror pulling them
with the history-sync cursor over a real WebSocket on 127.0.0.1 until the
mirror has all N. Reference: raw ``sqlite3`` batched inserts of rows of the
same shape (1,000 per transaction, WAL): the goal is >= 0.5x that. The wire
itself is measured too (raw websockets, 100 records per frame), to show it is
not the limit.
"""

from __future__ import annotations

import importlib.util

from bench.core import BenchError, Context, NotBuilt, Row, fmt_rate, judge_min, ratio
from bench.refs.sqlite import batched_insert_rate
from bench.refs.ws import batched_record_rate

__all__ = ["run", "squ_sync_rate"]

GOAL_RATIO = 0.5


def squ_sync_rate(ctx: Context, count: int) -> tuple[float, str]:
    """Rows per second from an agent's store into a console mirror over the wire."""
    for module in ("agentd.server", "console.fleet.link", "console.fleet.mirror"):
        if importlib.util.find_spec(module) is None:
            raise NotBuilt(f"{module}")
    raise NotBuilt("the sync benchmark wiring (agent server + console link)")


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(200_000, 50_000)
    ctx.log(f"raw sqlite3: {count:,} rows, 1,000 per transaction")
    raw = batched_insert_rate(ctx.scratch("sqlite"), count)
    ctx.log(f"raw websockets: {count:,} records, 100 per frame")
    wire = batched_record_rate(count)
    squ: float | None
    try:
        squ, note = squ_sync_rate(ctx, count)
    except BenchError as exc:
        squ, note = None, str(exc)
    r = ratio(squ, raw)
    return [
        Row(
            metric="history sync agent -> console (rows/s)",
            squ="not built yet" if squ is None else fmt_rate(squ),
            reference=f"raw sqlite3 batched {fmt_rate(raw)}",
            ratio=r,
            goal=f">= {GOAL_RATIO}x raw batched insert",
            passed=judge_min(r, GOAL_RATIO),
            note=f"{note}; raw websockets carries {fmt_rate(wire, ' records/s')} (100 per frame)",
        )
    ]
