"""A real squ-cron agent for benchmarks: scratch data dir, jobs.d, serve, stop.

``SquAgent`` runs ``python -m agentd serve --data-dir D`` as a child process,
exactly as an operator would (after ``squ-agentd init`` where that exists),
with the benchmark's jobs written to ``D/jobs.d/bench.toml``. It reads the
agent's store read-only to see executions, and on stop it ends the agent and
then, by pid, every process still naming its scratch data dir (the supervisor
is detached from the agent on purpose, so it would outlive it).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil

from bench.core import BenchError, Context, NotBuilt

__all__ = ["SquAgent", "job_toml", "wait_for"]

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_for(
    what: str, check: Callable[[], T | None], *, timeout_s: float, every_s: float = 0.05
) -> T:
    """Poll ``check`` until truthy; BenchError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)


def job_toml(name: str, **fields: Any) -> str:
    """One ``[job.<name>]`` table for a jobs.d file (strings, numbers, booleans)."""
    lines = [f"[job.{name}]"]
    for key, value in fields.items():
        lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def require_agent() -> None:
    """Raise NotBuilt unless the daemon can be started from this checkout."""
    for module in ("agentd.daemon", "agentd.config", "agentd.commands.serve", "agentd.supervisor"):
        if importlib.util.find_spec(module) is None:
            raise NotBuilt(f"the agent daemon ({module})")


class SquAgent:
    """One agent in ``ctx.work_dir/<name>``; use as a context manager."""

    def __init__(
        self, ctx: Context, name: str, jobs: str, *, ready_timeout_s: float = 30.0
    ) -> None:
        require_agent()
        self.ctx = ctx
        self.data_dir = ctx.scratch(name)
        self.jobs = jobs
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = self.data_dir.parent / f"{name}.stderr"

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> SquAgent:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _agentd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "agentd", *args, "--data-dir", str(self.data_dir)]

    def start(self) -> None:
        """Init the data dir, write the jobs, start serving, wait until the jobs are loaded."""
        env = dict(os.environ, PYTHONPATH=str(REPO))
        if importlib.util.find_spec("agentd.commands.init") is not None:
            subprocess.run(
                self._agentd("init"), cwd=REPO, env=env, check=True, capture_output=True, timeout=60
            )
        # Our own config: port 0, so benchmark agents never collide with each other, with
        # tests, or with a real agent on the default port.
        (self.data_dir / "agentd.toml").write_text(
            f'[agent]\nname = "bench-{self.data_dir.name}"\n\n'
            '[server]\nlisten = "127.0.0.1"\nport = 0\n'
        )
        jobs_dir = self.data_dir / "jobs.d"
        jobs_dir.mkdir(exist_ok=True)
        (jobs_dir / "bench.toml").write_text(self.jobs)
        expected = self.jobs.count("[job.")
        with self.stderr_path.open("wb") as stderr:
            self.proc = subprocess.Popen(
                self._agentd("serve", "--log-level", "warning"),
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        wait_for(
            f"the agent to load {expected} jobs",
            lambda: self._alive() and self.count("SELECT count(*) FROM jobs") >= expected,
            timeout_s=self.ready_timeout_s,
        )

    def _alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
            last = lines[-1] if lines else "no output"
            raise BenchError(f"agent exited with {self.proc.returncode}: {last}")
        return True

    def stop(self) -> None:
        """SIGTERM the agent, then end (by pid) its supervisor and any job left running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        leftovers = [*self.helper_processes(), *self.job_processes()]
        for proc in leftovers:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _gone, alive = psutil.wait_procs(leftovers, timeout=5)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()

    # -- processes -------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def helper_processes(self) -> list[psutil.Process]:
        """The agent's own processes besides the main one (supervisors, wrappers)."""
        mine = str(self.data_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if proc.pid != (self.proc.pid if self.proc else -1) and any(mine in a for a in cmdline):
                found.append(proc)
        return found

    def job_processes(self) -> list[psutil.Process]:
        """Every process descending from the agent or its helpers that is not one of them."""
        roots = self.helper_processes()
        if self.proc is not None:
            with contextlib.suppress(psutil.Error):
                roots.append(psutil.Process(self.proc.pid))
        root_pids = {p.pid for p in roots}
        jobs: dict[int, psutil.Process] = {}
        for root in roots:
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    if child.pid not in root_pids:
                        jobs[child.pid] = child
        return list(jobs.values())

    def agent_processes(self) -> list[psutil.Process]:
        """Main process first, then helpers that are not jobs."""
        assert self.proc is not None
        return [psutil.Process(self.proc.pid), *self.helper_processes()]

    # -- the store, read-only --------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        path = self.data_dir / "agentd.db"
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            yield db
        finally:
            db.close()

    def count(self, sql: str, *params: Any) -> int:
        """``SELECT count(*) ...`` on the agent's store (0 while it does not exist)."""
        if not (self.data_dir / "agentd.db").exists():
            return 0
        try:
            with self._db() as db:
                return int(db.execute(sql, params).fetchone()[0])
        except sqlite3.OperationalError:
            return 0  # table not created yet

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self._db() as db:
            return db.execute(sql, params).fetchall()
