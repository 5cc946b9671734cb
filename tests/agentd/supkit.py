"""A real supervisor for in-process agent tests: spawned once per module, killed by pid after."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from agentd.supervisor.client import spawn_supervisor
from tests.e2e.agentkit import wait_for


def running_supervisor(data: Path) -> Iterator[Path]:
    """Start a supervisor for ``data``, yield ``data``, then kill that supervisor (by its pid)."""
    data = data.resolve()
    spawn_supervisor(data)
    pid_file = data / "supervisor" / "pid"
    sock = data / "supervisor" / "sock"
    wait_for(lambda: pid_file.exists() and sock.exists(), what="the supervisor")
    try:
        yield data
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
