"""Event-loop set-up shared by the references.

The floor uses the fastest child watcher Python 3.11 offers (pidfd): the
default threaded watcher starts a thread per child and was measured 1.7x
slower on a burst of 1,000 (DESIGN.md, facts measured on these machines).
"""

from __future__ import annotations

import asyncio
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["run_with_pidfd", "sleep_until"]

T = TypeVar("T")


def run_with_pidfd(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())`` with the pidfd child watcher where it exists."""

    async def wrapper() -> T:
        if sys.version_info < (3, 12) and hasattr(asyncio, "PidfdChildWatcher"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                watcher = asyncio.PidfdChildWatcher()
                watcher.attach_loop(asyncio.get_running_loop())
                asyncio.set_child_watcher(watcher)
        return await main()

    return asyncio.run(wrapper())


async def sleep_until(instant: float) -> None:
    """Sleep until the wall-clock ``instant`` (seconds since the epoch)."""
    delay = instant - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
