"""Console: first paint of the Runs view over a 1,000,000-row mirror; input latency.

squ-cron: the console app over a mirror of N executions (headless, fixed
terminal size), and key-press latency while 1,000 log lines a second stream
into the log view; these come from the console's own ``bench/bench_console.py``
when it has landed. References: a bare Textual app painting a 50-row
``DataTable`` (no database), and the same bare app taking 1,000 lines a second
into a ``Log`` widget. Goals: first paint < 300 ms; input latency: no number
was set, the ratio to the bare app is reported.
"""

from __future__ import annotations

import importlib.util

from bench.core import BenchError, Context, NotBuilt, Row, fmt_ms, percentile, ratio
from bench.refs.tui import bare_first_paint, bare_input_latency

__all__ = ["run"]

PAINT_GOAL_S = 0.300


def squ_first_paint(ctx: Context, rows: int) -> tuple[float, str]:
    if importlib.util.find_spec("bench.bench_console") is None:
        raise NotBuilt("the console's bench/bench_console.py")
    raise NotBuilt("a first-paint measurement in bench/bench_console.py")


def squ_input_latency(ctx: Context) -> tuple[list[float], str]:
    if importlib.util.find_spec("bench.bench_console") is None:
        raise NotBuilt("the console's bench/bench_console.py")
    raise NotBuilt("an input-latency measurement in bench/bench_console.py")


def run(ctx: Context) -> list[Row]:
    rows = ctx.pick(1_000_000, 200_000)
    ctx.log("bare Textual: first paint of a 50-row DataTable")
    ref_paint = min(bare_first_paint() for _ in range(3))
    ctx.log("bare Textual: key latency under 1,000 log lines/s")
    ref_lat = bare_input_latency(presses=ctx.pick(60, 20))
    paint: float | None
    try:
        paint, paint_note = squ_first_paint(ctx, rows)
    except BenchError as exc:
        paint, paint_note = None, str(exc)
    lat: list[float] | None
    try:
        lat, lat_note = squ_input_latency(ctx)
    except BenchError as exc:
        lat, lat_note = None, str(exc)
    lat99 = None if lat is None else percentile(lat, 99)
    return [
        Row(
            metric=f"console first paint, Runs view over {rows:,} rows",
            squ="not built yet" if paint is None else fmt_ms(paint),
            reference=f"bare Textual DataTable {fmt_ms(ref_paint)}",
            ratio=ratio(paint, ref_paint),
            goal=f"< {PAINT_GOAL_S * 1000:.0f} ms",
            passed=None if paint is None else paint < PAINT_GOAL_S,
            note=paint_note,
        ),
        Row(
            metric="console input latency p99 under 1,000 log lines/s",
            squ="not built yet" if lat99 is None else fmt_ms(lat99),
            reference=f"bare Textual Log {fmt_ms(percentile(ref_lat, 99))}",
            ratio=ratio(lat99, percentile(ref_lat, 99)),
            goal="info (no goal set)",
            passed=None,
            note=lat_note,
        ),
    ]
