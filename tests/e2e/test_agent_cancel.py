"""End to end: `squ-agentd cancel` stops a running job through the control socket."""

from __future__ import annotations

import contextlib
import json

import psutil

from shared.enums import ExecutionStatus as S
from tests.e2e.agentkit import AgentProc, wait_for

JOBS = """
[job.sleeper]
command = "sleep 60"
kill_grace_s = 1
"""


def test_cancel_stops_a_running_job(agent: AgentProc) -> None:
    """A running execution cancelled from the CLI ends `cancelled` and leaves no process."""
    agent.write_jobs("jobs.toml", JOBS)
    agent.start()
    started = agent.cli("run", "sleeper", "--json")
    assert started.returncode == 0, started.stderr
    exec_id = json.loads(started.stdout)["execution"]["id"]
    wait_for(lambda: [e for e in agent.executions("sleeper") if e.status is S.RUNNING])
    done = agent.cli("cancel", exec_id)
    assert done.returncode == 0, done.stderr
    wait_for(lambda: [e for e in agent.executions("sleeper") if e.status is S.CANCELLED])
    wait_for(lambda: not _processes_of(exec_id), what="the job's processes to go")


def test_cancel_of_unknown_execution_is_a_clear_error(agent: AgentProc) -> None:
    """Cancelling an id the agent never had fails in one line naming the id."""
    agent.write_jobs("jobs.toml", JOBS)
    agent.start()
    done = agent.cli("cancel", "01NOSUCHEXECUTION000000000")
    assert done.returncode == 2
    assert "01NOSUCHEXECUTION000000000" in done.stderr
    assert "Traceback" not in done.stderr


def _processes_of(exec_id: str) -> list[psutil.Process]:
    """Live processes started for ``exec_id`` (the supervisor sets SQU_EXECUTION_ID)."""
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("SQU_EXECUTION_ID") == exec_id:
                found.append(proc)
    return found
