"""The bare floor: what Python on this machine does without any scheduler.

* ``floor_fire_lag``: an asyncio loop that sleeps until each whole second and
  spawns the stamp child; the lag is child's own start time minus the instant.
* ``spawn_burst``: at one instant, a tight ``subprocess.Popen`` loop starting
  N stamp children (the raw spawn loop that 1,000 jobs due together are held to).
* ``spawn_rate``: short children spawned and reaped as fast as possible with
  64 in flight (the raw spawn rate).
* ``spawn_memory``: the parent's RSS growth per running ``sleep`` child.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.child import read_stamps, shell_argv, stamp_command
from bench.refs.loop import run_with_pidfd, sleep_until

__all__ = [
    "BurstResult",
    "floor_fire_lag",
    "lags_after_instants",
    "spawn_burst",
    "spawn_memory",
    "spawn_rate",
]


@dataclass(frozen=True, slots=True)
class BurstResult:
    """Children started after one instant: their lags (s) and how many never ran."""

    lags_s: list[float]
    missed: int
    elapsed_s: float
    late: int = 0  # started after the observation window (their lag is a lower bound)


def lags_after_instants(stamps: list[float], instants: list[float]) -> list[float]:
    """Each stamp's lag behind the latest instant at or before it."""
    ordered = sorted(instants)
    lags = []
    for stamp in stamps:
        due = [t for t in ordered if t <= stamp]
        if due:
            lags.append(stamp - due[-1])
    return lags


def floor_fire_lag(work: Path, ticks: int) -> list[float]:
    """Fire lags (s) of ``ticks`` whole-second instants from a bare asyncio loop."""
    stamp_file = work / "floor.stamps"
    argv = shell_argv(stamp_command(stamp_file))
    instants: list[float] = []

    async def main() -> None:
        children = []
        first = math.floor(time.time()) + 1.0
        for i in range(ticks):
            instant = first + i
            await sleep_until(instant)
            instants.append(instant)
            children.append(await asyncio.create_subprocess_exec(*argv))
        await asyncio.gather(*(c.wait() for c in children))

    run_with_pidfd(main)
    return lags_after_instants(read_stamps(stamp_file), instants)


def spawn_burst(work: Path, count: int, *, settle_s: float = 10.0) -> BurstResult:
    """Start ``count`` stamp children in a tight loop at the next whole second."""
    stamp_file = work / "burst.stamps"
    argv = shell_argv(stamp_command(stamp_file))
    instant = math.floor(time.time()) + 1.0
    time.sleep(max(0.0, instant - time.time()))
    children = [subprocess.Popen(argv) for _ in range(count)]
    deadline = time.monotonic() + settle_s
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    stamps = read_stamps(stamp_file)
    lags = [s - instant for s in stamps]
    return BurstResult(lags_s=lags, missed=count - len(stamps), elapsed_s=max(lags, default=0.0))


def spawn_rate(command: str, count: int, *, in_flight: int = 64) -> float:
    """Short children started and reaped per second, ``in_flight`` at a time."""
    argv = shell_argv(command)

    async def main() -> float:
        gate = asyncio.Semaphore(in_flight)

        async def one() -> None:
            async with gate:
                child = await asyncio.create_subprocess_exec(*argv)
                await child.wait()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started)

    return run_with_pidfd(main)


def spawn_memory(count: int, *, hold_s: float = 2.0) -> float:
    """RSS growth (bytes) per running ``sleep`` child of a bare asyncio parent."""
    me = psutil.Process()

    async def main() -> float:
        await asyncio.sleep(0.2)
        before = me.memory_info().rss
        children = [
            await asyncio.create_subprocess_exec(
                "sleep", "60", stdin=subprocess.DEVNULL, start_new_session=True
            )
            for _ in range(count)
        ]
        await asyncio.sleep(hold_s)
        after = me.memory_info().rss
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        await asyncio.gather(*(c.wait() for c in children))
        return (after - before) / count

    return run_with_pidfd(main)
