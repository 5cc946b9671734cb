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
import sqlite3
import time
from pathlib import Path
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


_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def fast_mirror(path: Path, rows: int) -> None:
    """The same mirror as ``bench_console.build_mirror``, generated inside SQLite.

    Same schema (the console's ``Mirror.open``), same row shapes (200 jobs,
    20 agents, one run every 6 s, 1 in 10 failed or timed out), ULID-shaped
    ids sorted by time; but the rows come from a recursive CTE instead of a
    Python generator, so 1,000,000 rows take seconds, not minutes, on a
    loaded machine. Indexes are dropped for the load and rebuilt after.
    """
    from console.fleet.mirror import _ALL_COLUMNS, Mirror

    t0 = 1_800_000_000.0  # bench_console.T0
    Mirror.open(path).close()
    db = sqlite3.connect(path)
    try:
        # A scratch file built once: no journal, no fsync, a big cache (the index builds
        # sort in memory); WAL is set back afterwards, as the console opens it.
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in indexes:
            db.execute(f"DROP INDEX IF EXISTS {name}")
        # The ULID's first 10 characters encode the milliseconds (48 bits, base32).
        ms_chars = " || ".join(
            f"substr('{_B32}', ((ms >> {5 * k}) & 31) + 1, 1)" for k in range(9, -1, -1)
        )
        values = {
            "agent": "printf('agent-%02d', i % 20)",
            "epoch": "'E'",
            "id": "id",
            "job": "printf('job-%03d', i % 200)",
            "server": "printf('agent-%02d', i % 20)",
            "run_id": "id",
            "trigger": "'schedule'",
            "status": "CASE i % 10 WHEN 8 THEN 'failed' WHEN 9 THEN 'timeout' ELSE 'success' END",
            "seq": "i + 1",
            "scheduled_for": "at",
            "created_at": "at",
            "started_at": "at + 0.01",
            "finished_at": "at + 2.0",
            "duration_ms": "2000 + i % 500",
            "exit_code": "CASE WHEN i % 10 >= 8 THEN 1 ELSE 0 END",
            "retry_index": "0",
            "stdout_tail": "'ok' || char(10)",
            "stderr_tail": "''",
            "log_bytes": "3",
            "log_dropped_bytes": "0",
            "triggered_by": "''",
            "approved_by": "''",
            "params": "'{}'",
            "reason": "''",
        }
        columns = [c for c in _ALL_COLUMNS if c in values]
        select = ", ".join(values[c] for c in columns)
        with db:
            db.execute(
                f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?), "
                f"m(i, at, ms) AS (SELECT i, ? - (? - i) * 6.0, "
                f"CAST((? - (? - i) * 6.0) * 1000 AS INTEGER) FROM n), "
                f"t(i, at, id) AS MATERIALIZED "
                f"(SELECT i, at, {ms_chars} || printf('%016d', i) FROM m) "
                f"INSERT INTO executions ({', '.join(columns)}) SELECT {select} FROM t",
                (rows - 1, t0, rows, t0, rows),
            )
        with db:
            for _, sql in indexes:
                db.execute(sql)
        db.execute("ANALYZE")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


def squ_console(ctx: Context, rows: int, presses: int) -> tuple[float, int, list[float], str]:
    """(first paint s, rows shown, key latencies s, note) from bench_console's functions."""
    console = _console()
    mirror = ctx.scratch("mirror") / "mirror.db"
    started = time.perf_counter()
    fast_mirror(mirror, rows)  # build_mirror's rows, generated in SQLite (see fast_mirror)
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
