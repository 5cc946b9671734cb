"""The systemd unit: it lints, and what systemd does on restart keeps running jobs alive.

systemd is not running in this sandbox, so the restart is simulated the way
the unit tells systemd to do it: ``KillMode=process`` sends ``KillSignal`` to the
main PID only, then the unit starts ``ExecStart`` again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.e2e.agentkit import AgentProc, wait_for

UNIT = Path(__file__).resolve().parents[2] / "packaging" / "systemd" / "squ-agentd.service"


def unit_settings() -> dict[str, dict[str, list[str]]]:
    """section -> key -> values (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, {})
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_keeps_jobs_alive_and_delegates_cgroups() -> None:
    """The unit serves, restarts on failure, kills only the main process and delegates."""
    service = unit_settings()["Service"]
    assert service["ExecStart"][0].split()[:2] == ["/usr/bin/squ-agentd", "serve"]
    assert service["Restart"] == ["on-failure"]
    assert service["KillMode"] == ["process"]
    assert service["Delegate"] == ["yes"]
    assert unit_settings()["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say about the unit (binary path aside)."""
    fake = tmp_path / "squ-agentd"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    unit = tmp_path / "squ-agentd.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/squ-agentd", str(fake)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentProc]:
    proc = AgentProc(tmp_path / "data")
    try:
        yield proc
    finally:
        proc.cleanup()


def test_restart_as_systemd_does_it_keeps_the_running_job(agent: AgentProc, tmp_path: Path) -> None:
    """KillSignal to the main PID only, start again: the job lives on and ends as success."""
    service = unit_settings()["Service"]
    assert service["KillMode"] == ["process"]
    kill_signal = signal.Signals[service["KillSignal"][0]]
    flag = tmp_path / "go"
    agent.write_jobs(
        "wait.toml",
        f"""
        [job.wait]
        command = "while [ ! -e {flag} ]; do sleep 0.05; done; echo done"
        """,
    )
    agent.start()
    exec_id = agent.request("run", {"job": "wait"})["execution"]["id"]
    running = wait_for(
        lambda: [e for e in agent.executions("wait") if e.status == "running" and e.pid],
        what="the job running",
    )
    job_pid = running[0].pid
    assert job_pid is not None
    job_started = psutil.Process(job_pid).create_time()

    assert agent.proc is not None
    os.kill(agent.proc.pid, kill_signal)  # KillMode=process: the main PID and nothing else
    assert agent.proc.wait(timeout=30) == 0
    assert psutil.Process(job_pid).create_time() == job_started  # the job survived the stop

    agent.start()  # Restart= / ExecStart again
    flag.touch()
    done = wait_for(
        lambda: [e for e in agent.executions("wait") if e.id == exec_id and e.status == "success"],
        what="the re-adopted job to finish as success",
    )
    assert done[0].pid == job_pid
    assert len(agent.executions("wait")) == 1  # nothing ran twice
