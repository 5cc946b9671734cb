"""A real agent in a subprocess, for end-to-end tests: start, stop, kill -9, read its store.

``AgentProc(data_dir)`` runs ``python -m agentd serve --data-dir DATA`` with its
stderr in ``DATA/agentd.stderr``; ``wait_for(cond)`` polls a condition with a
deadline (never sleep-and-hope). ``cleanup()`` kills every process this agent
left behind (its supervisor outlives it on purpose, and jobs belong to it).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from agentd import control
from shared.models import Execution

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(
    cond: Callable[[], T], *, timeout_s: float = 15.0, every_s: float = 0.05, what: str = ""
) -> T:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what or cond}")
        time.sleep(every_s)


def _pythonpath() -> str:
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


class AgentProc:
    """One agent data dir and the daemon process serving it (restartable)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        # Any free port for the console protocol: tests run side by side.
        self.write_config("")
        self.jobs_dir = self.data_dir / "jobs.d"
        self.jobs_dir.mkdir(exist_ok=True)
        os.chmod(self.jobs_dir, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def write_config(self, text: str) -> None:
        """Write ``agentd.toml``: ``text`` plus a free WebSocket port (tests run side by side)."""
        (self.data_dir / "agentd.toml").write_text(textwrap.dedent(text) + "\n[server]\nport = 0\n")

    # -- jobs ----------------------------------------------------------------------

    def write_jobs(self, filename: str, text: str) -> Path:
        """Write a ``jobs.d`` file (mode 0644, as config management would)."""
        path = self.jobs_dir / filename
        tmp = path.with_name(f".{filename}.tmp")
        tmp.write_text(textwrap.dedent(text))
        os.chmod(tmp, 0o644)
        tmp.replace(path)
        return path

    # -- process -------------------------------------------------------------------

    def start(self, *, wait: bool = True) -> AgentProc:
        """Start ``squ-agentd serve`` and (by default) wait until its control socket answers."""
        assert self.proc is None or self.proc.poll() is not None, "agent already running"
        self.starts += 1
        log = open(self.data_dir / "agentd.stderr", "ab")  # the child keeps its copy
        env = {
            **os.environ,
            "PYTHONPATH": _pythonpath(),
            "PYTHONUNBUFFERED": "1",
            # No fixed metrics port: tests run side by side.
            "SQU_AGENTD_METRICS": "off",
        }
        self.proc = subprocess.Popen(
            [*self._serve_argv(), "--log-level", "debug"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=ROOT,
            env=env,
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def _serve_argv(self) -> list[str]:
        return [sys.executable, "-m", "agentd", "serve", "--data-dir", str(self.data_dir)]

    def wait_ready(self, timeout_s: float = 20.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.stderr()}")
            try:
                status: dict[str, Any] = self.request("status")
            except control.DaemonNotRunning:
                return None
            return status if status.get("pid") == self.proc.pid else None

        return wait_for(ready, timeout_s=timeout_s, what="the agent's control socket")

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait for a clean exit; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"agent did not stop on SIGTERM:\n{self.stderr()}") from None

    def kill9(self) -> None:
        """SIGKILL the agent's main process (its supervisor and jobs live on)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def hup(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stderr(self) -> str:
        with contextlib.suppress(OSError):
            return (self.data_dir / "agentd.stderr").read_text(errors="replace")
        return ""

    def request(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> Any:
        return control.request(control.socket_path(self.data_dir), method, params, **kw)

    def cli(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run ``squ-agentd ARGS --data-dir DATA`` as the operator would."""
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        cmd = [sys.executable, "-m", "agentd", *args, "--data-dir", str(self.data_dir)]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env
        )

    # -- store -------------------------------------------------------------------

    def executions(self, job: str | None = None) -> list[Execution]:
        """Every execution (of ``job``), oldest first, read straight from the store."""
        from agentd.daemon import db_path
        from agentd.store import executions as ex_sql
        from agentd.store import open_readonly

        path = db_path(self.data_dir)
        if not path.exists():
            return []
        db = open_readonly(path)
        try:
            rows = ex_sql.query_executions(db, job=job, limit=10_000)
        finally:
            db.close()
        return sorted(rows, key=lambda r: r.id)

    # -- cleanup -------------------------------------------------------------------

    def leftovers(self) -> list[psutil.Process]:
        """Processes that belong to this data dir (supervisor, jobs), other than the test."""
        mine = str(self.data_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "environ", "cwd"]):
            if proc.pid == os.getpid():
                continue
            info = proc.info
            text = " ".join(info.get("cmdline") or [])
            environ = info.get("environ") or {}
            if mine in text or any(mine in v for v in environ.values()):
                found.append(proc)
                with contextlib.suppress(psutil.Error):
                    found.extend(proc.children(recursive=True))
        return list({p.pid: p for p in found}.values())

    def cleanup(self) -> None:
        """Kill the agent, its supervisor and any job still running: the test started them."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for proc in self.leftovers():
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(self.leftovers(), timeout=5)
