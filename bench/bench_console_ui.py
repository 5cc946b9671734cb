"""Console: first paint of the Runs view over a 1,000,000-row mirror; input latency.

squ-cron: the console app over a mirror of N executions (headless, fixed
terminal size), and key latency while 1,000 log lines a second stream into
the log view, using the console owner's ``bench/bench_console.py``
(``build_mirror``, ``first_paint_s``, ``input_latency_s``). References: a
bare Textual app painting a 50-row ``DataTable`` (no database), and the same
bare app taking 1,000 lines a second into a ``Log`` widget. Goals: first
paint < 300 ms; input latency has no number, the ratio is reported.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from bench.core import BenchError, Context, NotBuilt, Row, fmt_ms, percentile, ratio
from bench.refs.tui import bare_first_paint, bare_input_latency

__all__ = ["run"]

PAINT_GOAL_S = 0.300


def _console() -> Any:
    try:
        return importlib.import_module("bench.bench_console")
    except ModuleNotFoundError as exc:
        raise NotBuilt(f"the console's bench/bench_console.py ({exc.name})") from None


def squ_console(ctx: Context, rows: int, presses: int) -> tuple[float, int, list[float], str]:
    """(first paint s, rows shown, key latencies s, note) from bench_console's functions."""
    console = _console()
    mirror = ctx.scratch("mirror") / "mirror.db"
    started = time.perf_counter()
    console.build_mirror(mirror, rows)
    built_s = time.perf_counter() - started
    ctx.log(f"mirror of {rows:,} rows built in {built_s:.1f} s; first paint x3")
    paints = sorted(console.first_paint_s(mirror) for _ in range(3))
    paint, shown = paints[1]  # the median of three
    ctx.log(f"key latency under 1,000 log lines/s, {presses} presses")
    latencies = console.input_latency_s(mirror, presses=presses)
    note = f"median of 3 paints {', '.join(fmt_ms(p) for p, _ in paints)}; {shown:,} rows counted"
    return paint, shown, latencies, note


def run(ctx: Context) -> list[Row]:
    rows = ctx.pick(1_000_000, 200_000)
    ctx.log("bare Textual: first paint of a 50-row DataTable")
    ref_paint = min(bare_first_paint() for _ in range(3))
    ctx.log("bare Textual: key latency under 1,000 log lines/s")
    ref_lat = bare_input_latency(presses=ctx.pick(60, 20))
    paint: float | None
    lat: list[float] | None
    try:
        paint, _shown, lat, paint_note = squ_console(ctx, rows, ctx.pick(60, 20))
        lat_note = f"{len(lat)} keys posted as the driver would, 50 ms apart"
    except BenchError as exc:
        paint, lat, paint_note, lat_note = None, None, str(exc), str(exc)
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
