"""1,000 jobs due in the same second: none missed, and how late they start.

squ-cron: 1,000 jobs in one jobs.d file, all with the six-field cron of one
instant a few seconds after the agent has loaded them, each running the stamp
child. Reference: the raw spawn loop (a tight ``subprocess.Popen`` loop of the
same 1,000 children at that instant). Peer: APScheduler 3 with 1,000
``CronTrigger`` jobs and its default 1 s misfire grace, which drops some.
Goals: zero missed; p99 start lag <= 1.3x the raw spawn loop's p99.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

from bench.agent import SquAgent, job_toml
from bench.child import read_stamps, stamp_command
from bench.core import BenchError, Context, Row, fmt_ms, judge_max, percentile, ratio
from bench.refs.aps import aps_burst
from bench.refs.spawn import BurstResult, spawn_burst

__all__ = ["run", "squ_burst"]

GOAL_RATIO = 1.3


def cron_at(instant: float) -> str:
    """Six-field cron (seconds first) for the UTC wall time of ``instant`` (daily)."""
    when = datetime.fromtimestamp(instant, UTC)
    return f"{when.second} {when.minute} {when.hour} * * *"


def squ_burst(ctx: Context, count: int, *, lead_s: float, settle_s: float) -> BurstResult:
    """``count`` squ-cron jobs due at one instant ``lead_s`` from now."""
    stamp_file = ctx.work_dir / "squ-burst.stamps"
    instant = math.floor(time.time() + lead_s)
    fields = {"command": stamp_command(stamp_file), "cron": cron_at(instant), "timezone": "UTC"}
    jobs = "".join(job_toml(f"burst-{i:04d}", **fields) for i in range(count))
    with SquAgent(ctx, "burst-agent", jobs, ready_timeout_s=lead_s - 1) as agent:
        if time.time() >= instant:
            raise BenchError(f"the agent took more than {lead_s:.0f} s to load {count} jobs")
        end = instant + settle_s
        while time.time() < end and len(read_stamps(stamp_file)) < count:
            time.sleep(0.2)
        # Missed = never going to run: no execution row for the tick, or one that was
        # skipped or lost. A job still waiting to start at the end of the window is late,
        # not missed: it counts in the lags at the window's length (a lower bound).
        rows = agent.count("SELECT count(*) FROM executions")
        dropped = agent.count("SELECT count(*) FROM executions WHERE status IN ('skipped', 'lost')")
    stamps = read_stamps(stamp_file)
    missed = count - rows + dropped
    late = max(0, count - missed - len(stamps))
    lags = [s - instant for s in stamps] + [settle_s] * late
    return BurstResult(lags_s=lags, missed=missed, elapsed_s=max(lags, default=0.0), late=late)


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(1000, 300)
    settle_s = ctx.pick(15.0, 8.0)
    ctx.log(f"raw spawn loop: {count} children at one instant")
    raw = spawn_burst(ctx.scratch("raw"), count, settle_s=settle_s)
    ctx.log(f"APScheduler 3: {count} CronTrigger jobs due together")
    aps = aps_burst(ctx.scratch("aps"), count, settle_s=settle_s)
    ctx.log(f"squ-cron: {count} jobs due together")
    squ: BurstResult | None
    note = ""
    try:
        # As long as the bound allows: a slow start is late, and its lag is measured.
        squ_settle_s = max(settle_s, min(45.0, ctx.time_left() - 40.0))
        squ = squ_burst(ctx, count, lead_s=ctx.pick(25.0, 15.0), settle_s=squ_settle_s)
    except BenchError as exc:
        squ, note = None, str(exc)
    raw_p99 = percentile(raw.lags_s, 99)
    squ_p99 = percentile(squ.lags_s, 99) if squ and squ.lags_s else None
    p99_ratio = ratio(squ_p99, raw_p99)
    if squ is not None and squ.late:
        note = f"{squ.late} not started after {squ_settle_s:.0f} s: p99 and ratio are lower bounds"
    aps_p99 = fmt_ms(percentile(aps.lags_s, 99)) if aps.lags_s else "-"
    return [
        Row(
            metric=f"{count:,} jobs due together: missed",
            squ="not built yet" if squ is None else f"{squ.missed} missed",
            reference=f"raw spawn loop {raw.missed} missed",
            ratio=None,
            goal="0 missed",
            passed=None if squ is None else squ.missed == 0,
            note=f"APScheduler 3 missed {aps.missed} of {count} (default 1 s grace)"
            + (f"; {note}" if note else ""),
        ),
        Row(
            metric=f"{count:,} jobs due together: p99 start lag",
            squ="not built yet"
            if squ_p99 is None
            else (">= " if squ is not None and squ.late else "") + fmt_ms(squ_p99),
            reference=f"raw spawn loop {fmt_ms(raw_p99)}",
            ratio=p99_ratio,
            goal=f"<= {GOAL_RATIO}x raw spawn loop",
            passed=judge_max(p99_ratio, GOAL_RATIO),
            note=note or (f"p50 {fmt_ms(percentile(squ.lags_s, 50))}" if squ_p99 else ""),
        ),
        Row(
            metric=f"{count:,} jobs due together vs APScheduler 3 (peer)",
            squ="not built yet" if squ is None else f"{squ.missed} missed",
            reference=f"APScheduler {aps.missed} missed, p99 {aps_p99}",
            ratio=ratio(squ_p99, percentile(aps.lags_s, 99) if aps.lags_s else None),
            goal="info",
            passed=None,
            note="ratio is squ-cron p99 lag over APScheduler's (started jobs only)",
        ),
    ]
