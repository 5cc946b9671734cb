"""Memory per running execution beyond the job itself.

squ-cron: N jobs ``sleep S`` due at one instant; once all N are running, the
PSS of the agent's own processes (main, supervisor, any per-execution wrapper:
everything in the agent's tree that is not a job's ``sh``/``sleep``) minus
what they used before, over N. Reference: a bare asyncio parent holding N
``sleep`` children (its RSS growth per child). Goal: <= 3 MB per execution.
"""

from __future__ import annotations

import math
import time

import psutil

from bench.agent import SquAgent, job_toml, wait_for
from bench.bench_burst import cron_at
from bench.core import BenchError, Context, Row, judge_max
from bench.refs.spawn import spawn_memory

__all__ = ["is_job_process", "run", "squ_memory_per_execution"]

GOAL_MB = 3.0
MB = 1e6


def is_job_process(proc: psutil.Process) -> bool:
    """The job itself: its ``sleep``, or the ``/bin/sh -c 'sleep N'`` running it."""
    try:
        cmd = proc.cmdline()
    except psutil.Error:
        return True
    if not cmd:
        return True
    if cmd[0].endswith("sleep"):
        return True
    return cmd[0].endswith("sh") and len(cmd) == 3 and cmd[2].startswith("sleep ")


def _overhead(agent: SquAgent) -> tuple[int, int, int]:
    """(PSS, RSS, process count) of the agent's own processes, jobs excluded."""
    procs = {p.pid: p for p in agent.agent_processes()}
    for p in agent.job_processes():
        if not is_job_process(p):
            procs[p.pid] = p
    pss = rss = 0
    for p in procs.values():
        try:
            info = p.memory_full_info()
        except psutil.Error:
            continue
        pss += info.pss
        rss += info.rss
    return pss, rss, len(procs)


def squ_memory_per_execution(
    ctx: Context, count: int, sleep_s: int, *, lead_s: float
) -> tuple[float, str]:
    instant = math.floor(time.time() + lead_s)
    fields = {"command": f"sleep {sleep_s}", "cron": cron_at(instant), "timezone": "UTC"}
    jobs = "".join(job_toml(f"sleeper-{i:03d}", **fields) for i in range(count))
    with SquAgent(ctx, "exec-memory-agent", jobs, ready_timeout_s=lead_s - 1) as agent:
        if time.time() >= instant - 1:
            raise BenchError(f"the agent took more than {lead_s:.0f} s to load {count} jobs")
        time.sleep(max(0.0, instant - 1 - time.time()))
        pss0, rss0, n0 = _overhead(agent)
        wait_for(
            f"{count} running executions",
            lambda: (
                agent.count("SELECT count(*) FROM executions WHERE status = 'running'") >= count
            ),
            timeout_s=sleep_s / 2,
        )
        time.sleep(2.0)
        pss1, rss1, n1 = _overhead(agent)
    per_pss = (pss1 - pss0) / count / MB
    note = (
        f"{count} x sleep {sleep_s}; agent processes {n0} -> {n1}; "
        f"PSS {pss0 / MB:.1f} -> {pss1 / MB:.1f} MB, RSS {rss0 / MB:.1f} -> {rss1 / MB:.1f} MB"
    )
    return per_pss, note


def run(ctx: Context) -> list[Row]:
    count = ctx.pick(200, 50)
    sleep_s = ctx.pick(60, 30)
    ctx.log(f"bare asyncio parent holding {count} sleep children")
    ref = spawn_memory(count) / MB
    ctx.log(f"squ-cron: {count} running sleep jobs")
    squ: float | None
    try:
        squ, note = squ_memory_per_execution(ctx, count, sleep_s, lead_s=ctx.pick(12.0, 10.0))
    except BenchError as exc:
        squ, note = None, str(exc)
    return [
        Row(
            metric="memory per running execution (agent + supervisors)",
            squ="not built yet" if squ is None else f"{squ:.3f} MB",
            reference=f"bare asyncio parent {ref:.3f} MB",
            ratio=None,
            goal=f"<= {GOAL_MB:.0f} MB",
            passed=judge_max(squ, GOAL_MB),
            note=note,
        )
    ]
