"""Console measurements: first paint of the Runs view over a big mirror; key latency.

Used by ``bench/bench_console_ui.py`` (the runner's row) and runnable alone::

    .venv/bin/python -m bench.bench_console            # 1,000,000 rows
    .venv/bin/python -m bench.bench_console --rows 200000

which builds the mirror once in a temp dir (``executemany`` in one
transaction, indexes built after the load, as a long-synced mirror has them)
and prints a Markdown table with the goal (first paint < 300 ms) and the ratio
to a bare Textual app painting a 50-row DataTable.

First paint is measured like the bare reference: from ``run_test`` entry (the
mirror opened inside the timed span) to the first refresh after the Runs
view's list mounted with its rows counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC
from pathlib import Path

__all__ = ["build_mirror", "first_paint_s", "input_latency_s", "main"]

T0 = 1_800_000_000.0
JOBS = [f"job-{i:03d}" for i in range(200)]
AGENTS = [f"agent-{i:02d}" for i in range(20)]
STATUSES = ["success"] * 8 + ["failed", "timeout"]


def build_mirror(path: Path, rows: int) -> Path:
    """A mirror file with ``rows`` executions over 200 jobs and 20 agents."""
    from console.fleet.mirror import _ALL_COLUMNS, Mirror
    from shared.ids import scheduled_execution_id

    Mirror.open(path).close()  # schema as the console makes it
    conn = sqlite3.connect(str(path))
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:  # loading without indexes, then indexing, is ~3x faster
        conn.execute(f"DROP INDEX IF EXISTS {name}")

    def values():
        for i in range(rows):
            job = JOBS[i % len(JOBS)]
            agent = AGENTS[i % len(AGENTS)]
            at = T0 - (rows - i) * 6.0
            ex_id = scheduled_execution_id(job, at)
            status = STATUSES[i % len(STATUSES)]
            row = {
                "agent": agent, "epoch": "E", "id": ex_id, "job": job, "server": agent,
                "run_id": ex_id, "trigger": "schedule", "status": status, "seq": i + 1,
                "scheduled_for": at, "created_at": at, "started_at": at + 0.01,
                "finished_at": at + 2.0, "duration_ms": 2000 + i % 500,
                "exit_code": 0 if status == "success" else 1, "signal": None,
                "retry_index": 0, "pid": None, "stdout_tail": "ok\n", "stderr_tail": "",
                "log_bytes": 3, "log_dropped_bytes": 0, "cpu_time_s": None,
                "peak_rss_kb": None, "triggered_by": "", "approved_by": "", "params": "{}",
                "reason": "",
            }  # fmt: skip
            yield tuple(row[c] for c in _ALL_COLUMNS)

    marks = ", ".join("?" * len(_ALL_COLUMNS))
    with conn:
        conn.executemany(
            f"INSERT INTO executions ({', '.join(_ALL_COLUMNS)}) VALUES ({marks})", values()
        )
    with conn:
        for _, sql in indexes:
            conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return path


def first_paint_s(mirror_path: Path, size: tuple[int, int] = (120, 40)) -> tuple[float, int]:
    """Seconds to the first paint of the Runs view, and the row count it showed."""
    from console.app import SquApp
    from console.fleet.mirror import Mirror
    from console.fleet.source import StaticFleet
    from console.theme import TuiConfig
    from console.widgets.run_list import RunList

    painted = asyncio.Event()
    original = RunList.on_mount

    def on_mount(self: RunList) -> None:
        original(self)
        self.call_after_refresh(painted.set)

    async def run() -> tuple[float, int]:
        RunList.on_mount = on_mount  # type: ignore[method-assign]
        try:
            started = time.perf_counter()
            mirror = Mirror.open(mirror_path)
            config = TuiConfig(theme="squ-dark", tz=UTC, start_view="runs", cursor_blink=False)
            app = SquApp(mirror, StaticFleet(states=[]), clock=lambda: T0, config=config)
            async with app.run_test(size=size) as pilot:
                await painted.wait()
                elapsed = time.perf_counter() - started
                total = app.screen.query_one(RunList).total
                await pilot.pause()
            mirror.close()
            return elapsed, total
        finally:
            RunList.on_mount = original  # type: ignore[method-assign]

    return asyncio.run(run())


def input_latency_s(
    mirror_path: Path, presses: int = 40, lines_per_s: int = 1000, size: tuple[int, int] = (120, 40)
) -> list[float]:
    """Key press -> handler latencies (s) while the log viewer takes ``lines_per_s``."""
    from textual import events

    from console.app import SquApp
    from console.fleet.mirror import Mirror
    from console.fleet.source import AgentState, LinkState, LogChunk, StaticFleet
    from console.screens.logs import LogScreen
    from console.theme import TuiConfig

    latencies: list[float] = []
    sent: list[float] = []

    class Timed(SquApp):
        def on_key(self, event: events.Key) -> None:
            if sent and len(latencies) < len(sent):
                latencies.append(time.perf_counter() - sent[-1])

    async def run() -> None:
        mirror = Mirror.open(mirror_path)
        fleet = StaticFleet(states=[AgentState(name="agent-00", url="", link=LinkState.UP)])
        config = TuiConfig(theme="squ-dark", tz=UTC, cursor_blink=False)
        app = Timed(mirror, fleet, clock=lambda: T0, config=config)
        async with app.run_test(size=size) as pilot:
            app.push_screen(LogScreen("agent-00", "BENCH"))
            await pilot.pause()
            batch = lines_per_s // 50
            counter = 0

            def feed() -> None:
                nonlocal counter
                text = "".join(f"line {counter + i} some output text\n" for i in range(batch))
                app.post_message(LogChunk("agent-00", "BENCH", "stdout", text.encode()))
                counter += batch

            app.set_interval(0.02, feed)  # 50 batches a second, like the reference
            await asyncio.sleep(0.3)
            for _ in range(presses):
                # Posted as the terminal driver would (Pilot.press waits for idle).
                sent.append(time.perf_counter())
                app.post_message(events.Key("x", "x"))
                await asyncio.sleep(0.05)
        mirror.close()

    asyncio.run(run())
    return latencies


def main(argv: list[str] | None = None) -> int:
    from bench.refs.tui import bare_first_paint

    parser = argparse.ArgumentParser(prog="python -m bench.bench_console")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="squ-console-bench-") as tmp:
        path = Path(tmp) / "mirror.db"
        built = time.perf_counter()
        build_mirror(path, args.rows)
        build_s = time.perf_counter() - built
        paints = [first_paint_s(path) for _ in range(3)]
        paint = sorted(paints)[1]
        total = paints[0][1]
        ref = min(bare_first_paint() for _ in range(3))
        latencies = sorted(input_latency_s(path, presses=30))
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[-1]
    print(f"mirror of {total:,} rows built in {build_s:.1f} s\n")
    print("| metric | squ-cron | bare Textual | ratio | goal | pass |")
    print("|---|---|---|---|---|---|")
    ok = "yes" if paint[0] < 0.300 else "NO"
    print(
        f"| first paint, Runs view over {total:,} rows (median of 3) | {paint[0] * 1000:.0f} ms "
        f"| {ref * 1000:.0f} ms (50-row DataTable) | {paint[0] / ref:.2f} | < 300 ms | {ok} |"
    )
    print(
        f"| key latency p50 / p99 under 1,000 log lines/s | {p50 * 1000:.1f} / "
        f"{p99 * 1000:.1f} ms | - | - | info | - |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
