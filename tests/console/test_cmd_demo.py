"""``squ demo``: a real local agent with the sample jobs; stopping leaves nothing running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from console.cli import main
from tests.e2e.agentkit import ROOT, wait_for
from tests.e2e.conftest import _skip_if_missing

SAMPLES = {"heartbeat", "flaky-backup", "long-report", "greet", "deploy"}


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``squ demo --no-tui`` running in a scratch dir it keeps; killed hard if a test fails."""
    _skip_if_missing()
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--no-tui", "--dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "demo agent listening on ws://127.0.0.1:" in first, proc.stderr.read()  # type: ignore[union-attr]
        yield proc, tmp_path / "demo"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in processes_of(tmp_path / "demo"):
            p.kill()


def processes_of(root: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(root) in " ".join(p.info.get("cmdline") or []) and p.pid != os.getpid()
    ]


def squ_json(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    code = main(["--config-dir", str(config), *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_demo_serves_the_sample_jobs_and_runs_them(
    demo: tuple[subprocess.Popen[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo agent carries every sample job and the frequent one runs on its own."""
    _, root = demo
    jobs = squ_json(root / "console", "jobs", capsys=capsys)
    assert {j["name"] for j in jobs} == SAMPLES  # type: ignore[union-attr, index]
    wait_for(
        lambda: any(
            r["job"] == "heartbeat" and r["status"] == "success"
            for r in squ_json(root / "console", "history", capsys=capsys)  # type: ignore[union-attr]
        ),
        what="a heartbeat run",
        timeout_s=30,
        every_s=1.0,
    )


def test_interrupting_the_demo_stops_agent_supervisor_and_jobs(
    demo: tuple[subprocess.Popen[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C while a job runs: the agent, its supervisor and the job all end."""
    proc, root = demo
    config = root / "console"
    assert main(["--config-dir", str(config), "run", "long-report"]) == 0

    def running_pid() -> int | None:
        rows = squ_json(config, "history", "--job", "long-report", capsys=capsys)
        pids = [r["pid"] for r in rows if r["status"] == "running" and r["pid"]]  # type: ignore[union-attr, index]
        return pids[0] if pids else None

    job_pid = wait_for(running_pid, what="the long job running", timeout_s=30, every_s=0.5)
    assert processes_of(root), "the agent and its supervisor run under the demo dir"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=40) == 0
    assert processes_of(root) == []
    assert not psutil.pid_exists(job_pid) or psutil.Process(job_pid).status() == "zombie"


def test_sigterm_stops_the_demo_and_removes_its_scratch_dir(tmp_path: Path) -> None:
    """Without --dir the scratch directory is temporary: gone after the demo stops."""
    _skip_if_missing()
    proc = subprocess.Popen(
        [sys.executable, "-m", "console", "demo", "--no-tui"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        data_dir = Path(line.split("(data in ")[1].rstrip(")\n"))
        assert data_dir.is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not data_dir.parent.exists()
    assert processes_of(data_dir) == []
