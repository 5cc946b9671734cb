"""Log capture of 1 GiB: how fast a job's output reaches its log, and agent RSS.

squ-cron: one job ``head -c 1G /dev/zero`` (max_log_bytes above that, so all
of it is kept); the rate is the bytes over the execution's recorded duration,
and the agent's RSS (main + supervisor) is sampled every 100 ms while it runs.
Reference: ``head -c 1G /dev/zero > file``, the shell redirect, run before and
after squ-cron (the disk is shared and drifts; the better rate counts, which
is the harder bar). Goals: >= 0.5x the redirect's rate; agent RSS growth
< 20 MB.
"""

from __future__ import annotations

import math
import threading
import time

import psutil

from bench.agent import SquAgent, job_toml, wait_for
from bench.bench_burst import cron_at
from bench.core import BenchError, Context, Row, judge_max, judge_min, ratio
from bench.refs.disk import redirect_rate

__all__ = ["run", "squ_capture"]

GOAL_RATIO = 0.5
GOAL_RSS_MB = 20.0
MB = 1e6


class _RssSampler:
    """Sum of RSS of some processes, sampled every 100 ms in a thread; keeps the max."""

    def __init__(self, procs: list[psutil.Process]) -> None:
        self.procs = procs
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in self.procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._sample())

    def __enter__(self) -> _RssSampler:
        self.baseline = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def squ_capture(ctx: Context, nbytes: int, *, lead_s: float) -> tuple[float, float, str]:
    """(bytes/s, RSS growth in MB, note) for one job printing ``nbytes`` zeros."""
    instant = math.floor(time.time() + lead_s)
    jobs = job_toml(
        "big-output",
        command=f"head -c {nbytes} /dev/zero",
        cron=cron_at(instant),
        timezone="UTC",
        max_log_bytes=2 * nbytes,
    )
    with SquAgent(ctx, "log-agent", jobs, ready_timeout_s=lead_s - 1) as agent:
        time.sleep(2.0)
        with _RssSampler(agent.agent_processes()) as rss:
            final = "SELECT count(*) FROM executions WHERE finished_at IS NOT NULL"
            wait_for(
                "the big-output execution to finish",
                lambda: agent.count(final) >= 1,
                timeout_s=instant - time.time() + ctx.time_left() - 15,
            )
        status, duration_ms, log_bytes, dropped = agent.rows(
            "SELECT status, duration_ms, log_bytes, log_dropped_bytes FROM executions"
        )[0]
    if status != "success":
        raise BenchError(f"the job ended {status}")
    growth = (rss.peak - rss.baseline) / MB
    note = (
        f"{nbytes / 2**20:.0f} MiB in {duration_ms} ms; log_bytes {log_bytes}, "
        f"dropped {dropped}; RSS {rss.baseline / MB:.1f} -> peak {rss.peak / MB:.1f} MB"
    )
    return nbytes / (duration_ms / 1000), growth, note


def run(ctx: Context) -> list[Row]:
    nbytes = ctx.pick(2**30, 2**28)
    size = f"{nbytes / 2**30:g} GiB"
    ctx.log(f"shell redirect: head -c {size} /dev/zero > file")
    before = redirect_rate(ctx.scratch("redirect"), nbytes)
    ctx.log(f"squ-cron: one job printing {size}")
    squ_rate: float | None
    growth: float | None
    try:
        squ_rate, growth, note = squ_capture(ctx, nbytes, lead_s=ctx.pick(12.0, 10.0))
    except BenchError as exc:
        squ_rate = growth = None
        note = str(exc)
    ctx.log("shell redirect again (the disk is shared: the better of the two counts)")
    after = redirect_rate(ctx.scratch("redirect"), nbytes)
    ref = max(before, after)
    note += f"; redirect before/after {before / MB:,.0f}/{after / MB:,.0f} MB/s"
    r = ratio(squ_rate, ref)
    return [
        Row(
            metric=f"log capture of {size}: rate",
            squ="not built yet" if squ_rate is None else f"{squ_rate / MB:,.0f} MB/s",
            reference=f"shell redirect {ref / MB:,.0f} MB/s",
            ratio=r,
            goal=f">= {GOAL_RATIO}x shell redirect",
            passed=judge_min(r, GOAL_RATIO),
            note=note,
        ),
        Row(
            metric=f"log capture of {size}: agent RSS growth",
            squ="not built yet" if growth is None else f"{growth:.1f} MB",
            reference="-",
            ratio=None,
            goal=f"< {GOAL_RSS_MB:.0f} MB",
            passed=judge_max(growth, GOAL_RSS_MB),
            note="main + supervisor, sampled every 100 ms",
        ),
    ]
