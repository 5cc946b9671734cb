"""``squ demo`` under a real terminal: when the terminal goes away, nothing is left running."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import sys
import threading
from pathlib import Path

import psutil

from tests.e2e.agentkit import ROOT, _pythonpath, wait_for
from tests.e2e.conftest import _skip_if_missing


def processes_of(root: Path) -> list[psutil.Process]:
    """Every process whose command line names ``root`` (the demo's agent and supervisor)."""
    return [
        proc
        for proc in psutil.process_iter(["cmdline"])
        if proc.pid != os.getpid() and str(root) in " ".join(proc.info.get("cmdline") or [])
    ]


def drain(fd: int, stop: threading.Event) -> None:
    """Read the terminal's output (a full pty would block the TUI) until it closes."""
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:  # EIO: the last writer closed the terminal
                return


def test_a_hang_up_stops_the_demo_agent_and_supervisor(tmp_path: Path) -> None:
    """Regression: SIGHUP (terminal closed) to `squ demo` leaves no agent or supervisor behind."""
    _skip_if_missing()
    root = tmp_path / "demo"
    argv = [sys.executable, "-m", "console", "demo", "--dir", str(root)]
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the TUI on the pty as its controlling terminal
        os.chdir(ROOT)
        os.execve(sys.executable, argv, env)
    stop = threading.Event()
    reader = threading.Thread(target=drain, args=(fd, stop), daemon=True)
    reader.start()
    demo = psutil.Process(pid)
    try:
        # The TUI is up once the agent and its supervisor are running.
        wait_for(
            lambda: any("agentd.supervisor" in " ".join(p.cmdline()) for p in processes_of(root)),
            timeout_s=40,
            what="the demo's agent and supervisor",
        )
        os.kill(pid, signal.SIGHUP)
        demo.wait(timeout=30)
        psutil.wait_procs(processes_of(root), timeout=10)
        assert [p.cmdline() for p in processes_of(root) if p.is_running()] == []
    finally:
        stop.set()
        reader.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(psutil.Error):
            demo.kill()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        for proc in processes_of(root):
            with contextlib.suppress(psutil.Error):
                proc.kill()
