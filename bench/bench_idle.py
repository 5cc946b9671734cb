"""An idle agent with 100 jobs defined: resident memory and CPU over 60 s.

squ-cron: an agent whose 100 jobs are all due hours from now, measured over
the same window as the reference, a bare asyncio process sleeping (the least
any Python daemon costs). Goals: RSS <= 35 MB, CPU < 0.5 % of one core. The
main process and the whole agent (main + supervisor, PSS so shared pages are
not counted twice) each get a row; Debian cron gets a note.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psutil

from bench.agent import SquAgent, job_toml
from bench.core import BenchError, Context, Row, judge_max, ratio

__all__ = ["idle_jobs", "run"]

RSS_GOAL_MB = 35.0
CPU_GOAL_PCT = 0.5
MB = 1e6


def idle_jobs(count: int) -> str:
    """``count`` daily jobs due 8-12 hours from now (none fires in the window)."""
    base = datetime.now(UTC) + timedelta(hours=8)
    out = []
    for i in range(count):
        when = base + timedelta(minutes=i * 2)
        out.append(
            job_toml(
                f"idle-{i:03d}",
                command=f"echo job {i}",
                cron=f"{when.minute} {when.hour} * * *",
                timezone="UTC",
            )
        )
    return "".join(out)


def _label(proc: psutil.Process, index: int) -> str:
    """``main`` for the agent itself, else the module a helper runs (``agentd.supervisor``)."""
    if index == 0:
        return "main"
    cmd = proc.cmdline()
    return cmd[cmd.index("-m") + 1] if "-m" in cmd[:-1] else proc.name()


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        t = p.cpu_times()
        total += t.user + t.system
    return total


def _pss(procs: list[psutil.Process]) -> int:
    return sum(p.memory_full_info().pss for p in procs)


def run(ctx: Context) -> list[Row]:
    window_s = ctx.pick(60.0, 10.0)
    ref = subprocess.Popen(
        [sys.executable, "-c", "import asyncio; asyncio.run(asyncio.sleep(3600))"],
        stdin=subprocess.DEVNULL,
    )
    ref_proc = psutil.Process(ref.pid)
    squ_rss = squ_pss = squ_cpu = None
    helpers = ""
    note = ""
    try:
        try:
            with SquAgent(ctx, "idle-agent", idle_jobs(100)) as agent:
                time.sleep(3.0)  # let start-up work (load, reconcile) finish
                procs = agent.agent_processes()
                helpers = ", ".join(
                    f"{_label(p, i)} RSS {p.memory_info().rss / MB:.1f} MB"
                    for i, p in enumerate(procs)
                )
                ctx.log(f"measuring idle agent and bare asyncio for {window_s:.0f} s")
                cpu0, ref_cpu0, t0 = _cpu_s(procs), _cpu_s([ref_proc]), time.monotonic()
                time.sleep(window_s)
                wall = time.monotonic() - t0
                squ_cpu = (_cpu_s(procs) - cpu0) / wall * 100
                ref_cpu = (_cpu_s([ref_proc]) - ref_cpu0) / wall * 100
                squ_rss = procs[0].memory_info().rss / MB
                squ_pss = _pss(procs) / MB
        except BenchError as exc:
            note = str(exc)
            ctx.log(f"bare asyncio only for {window_s:.0f} s")
            ref_cpu0, t0 = _cpu_s([ref_proc]), time.monotonic()
            time.sleep(window_s)
            ref_cpu = (_cpu_s([ref_proc]) - ref_cpu0) / (time.monotonic() - t0) * 100
        ref_rss = ref_proc.memory_info().rss / MB
        ref_pss = _pss([ref_proc]) / MB
    finally:
        ref.kill()
        ref.wait()

    def mb(value: float | None) -> str:
        return "not built yet" if value is None else f"{value:.1f} MB"

    cron = shutil.which("cron")
    cron_note = "Debian cron: not installed here (DESIGN.md: 2.6 MB)" if not cron else ""
    return [
        Row(
            metric="agent idle RSS, main process (100 jobs)",
            squ=mb(squ_rss),
            reference=f"bare asyncio {ref_rss:.1f} MB",
            ratio=ratio(squ_rss, ref_rss),
            goal=f"<= {RSS_GOAL_MB:.0f} MB",
            passed=judge_max(squ_rss, RSS_GOAL_MB),
            note=note or f"{helpers}; {cron_note}",
        ),
        Row(
            metric="agent idle memory, all agent processes (PSS)",
            squ=mb(squ_pss),
            reference=f"bare asyncio {ref_pss:.1f} MB",
            ratio=ratio(squ_pss, ref_pss),
            goal=f"<= {RSS_GOAL_MB:.0f} MB",
            passed=judge_max(squ_pss, RSS_GOAL_MB),
            note=note or "main + supervisor; PSS counts shared pages once",
        ),
        Row(
            metric=f"agent idle CPU over {window_s:.0f} s (100 jobs)",
            squ="not built yet" if squ_cpu is None else f"{squ_cpu:.3f} %",
            reference=f"bare asyncio {ref_cpu:.3f} %",
            ratio=ratio(squ_cpu, ref_cpu),
            goal=f"< {CPU_GOAL_PCT} %",
            passed=None if squ_cpu is None else squ_cpu < CPU_GOAL_PCT,
            note=note or "% of one core, main + supervisor",
        ),
    ]
