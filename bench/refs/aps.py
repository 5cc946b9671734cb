"""The peer a user would pick instead: APScheduler 3.x in an asyncio program.

``AsyncIOScheduler`` with a ``CronTrigger`` per job, each job an ``async``
function that spawns the same stamp child as squ-cron runs. Defaults are kept
as a user would (misfire grace 1 s, the default executor), because the point is
what a user gets; the pidfd child watcher is used as for the floor.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime
from pathlib import Path

from bench.child import read_stamps, shell_argv, stamp_command
from bench.refs.loop import run_with_pidfd
from bench.refs.spawn import BurstResult, lags_after_instants

__all__ = ["aps_burst", "aps_fire_lag"]


def _quiet() -> None:
    # A burst makes APScheduler log one warning per missed job: keep them off
    # the benchmark's output, we count the misses from the stamps instead.
    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)


def aps_fire_lag(work: Path, ticks: int) -> list[float]:
    """Fire lags (s) of one every-second CronTrigger job over ``ticks`` seconds."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    _quiet()
    stamp_file = work / "aps.stamps"
    argv = shell_argv(stamp_command(stamp_file))

    async def main() -> list[float]:
        children: list[asyncio.subprocess.Process] = []

        async def job() -> None:
            children.append(await asyncio.create_subprocess_exec(*argv))

        scheduler = AsyncIOScheduler()
        start = math.floor(time.time()) + 1.0
        scheduler.add_job(job, CronTrigger(second="*"), next_run_time=None)
        scheduler.start()
        scheduler.get_jobs()[0].modify(next_run_time=datetime.fromtimestamp(start).astimezone())
        await asyncio.sleep(start + ticks - time.time() - 0.5)
        scheduler.shutdown(wait=False)
        await asyncio.gather(*(c.wait() for c in children))
        stamps = read_stamps(stamp_file)
        return lags_after_instants(stamps, [start + i for i in range(ticks + 1)])

    return run_with_pidfd(main)


def aps_burst(work: Path, count: int, *, settle_s: float = 10.0) -> BurstResult:
    """``count`` CronTrigger jobs due in the same second: lags and misses."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.cron import CronTrigger

    _quiet()
    stamp_file = work / "aps-burst.stamps"
    argv = shell_argv(stamp_command(stamp_file))

    async def main() -> BurstResult:
        children: list[asyncio.subprocess.Process] = []

        async def job() -> None:
            children.append(await asyncio.create_subprocess_exec(*argv))

        scheduler = AsyncIOScheduler()
        # Two seconds ahead so that adding the jobs is over before they are due.
        instant = math.floor(time.time()) + 2.0
        when = datetime.fromtimestamp(instant).astimezone()
        for i in range(count):
            trigger = CronTrigger(
                hour=when.hour, minute=when.minute, second=when.second, timezone=when.tzinfo
            )
            scheduler.add_job(job, trigger, id=f"job{i}")
        scheduler.start()
        await asyncio.sleep(instant + settle_s - time.time())
        scheduler.shutdown(wait=False)
        await asyncio.gather(*(c.wait() for c in children))
        stamps = read_stamps(stamp_file)
        lags = [s - instant for s in stamps]
        return BurstResult(
            lags_s=lags, missed=count - len(stamps), elapsed_s=max(lags, default=0.0)
        )

    return run_with_pidfd(main)
