"""Short jobs fully recorded per second (row, state changes, log file).

squ-cron: N jobs running ``true``, all due at one instant; the rate is N over
the time from that instant until the store shows every one of them finished
(``success`` with ``finished_at``), polled every 50 ms. Reference: the raw
spawn rate, ``/bin/sh -c true`` started and reaped from asyncio (pidfd), 64 in
flight. Goal: >= 0.5x the raw spawn rate.
"""

from __future__ import annotations

import math
import time

from bench.agent import SquAgent, job_toml, wait_for
from bench.bench_burst import cron_at
from bench.core import BenchError, Context, Row, fmt_rate, judge_min, ratio
from bench.refs.spawn import spawn_rate

__all__ = ["run", "squ_recorded_rate"]

GOAL_RATIO = 0.5


def squ_recorded_rate(ctx: Context, count: int, *, lead_s: float) -> tuple[float, str]:
    """Executions fully recorded per second, and a note on what was checked."""
    instant = math.floor(time.time() + lead_s)
    fields = {"command": "true", "cron": cron_at(instant), "timezone": "UTC"}
    jobs = "".join(job_toml(f"short-{i:04d}", **fields) for i in range(count))
    done_sql = (
        "SELECT count(*) FROM executions WHERE status = 'success' AND finished_at IS NOT NULL"
    )
    with SquAgent(ctx, "throughput-agent", jobs, ready_timeout_s=lead_s - 1) as agent:
        if time.time() >= instant:
            raise BenchError(f"the agent took more than {lead_s:.0f} s to load {count} jobs")
        wait_for(
            f"{count} recorded executions",
            lambda: agent.count(done_sql) >= count,
            timeout_s=instant - time.time() + ctx.pick(60, 30),
        )
        elapsed = time.time() - instant
        runs = agent.data_dir / "runs"
        logs = sum(1 for p in runs.iterdir() if any(p.iterdir())) if runs.exists() else 0
    return count / elapsed, f"{count} rows success; {logs} run dirs with files"


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(300, 150)
    ctx.log(f"raw spawn rate: {count} x /bin/sh -c true, 64 in flight")
    raw = spawn_rate("true", count)
    ctx.log(f"squ-cron: {count} short jobs due together, until all are recorded")
    squ: float | None
    try:
        squ, note = squ_recorded_rate(ctx, count, lead_s=ctx.pick(20.0, 15.0))
    except BenchError as exc:
        squ, note = None, str(exc)
    r = ratio(squ, raw)
    return [
        Row(
            metric="short jobs fully recorded per second",
            squ="not built yet" if squ is None else fmt_rate(squ),
            reference=f"raw spawn {fmt_rate(raw)}",
            ratio=r,
            goal=f">= {GOAL_RATIO}x raw spawn rate",
            passed=judge_min(r, GOAL_RATIO),
            note=note,
        )
    ]
