"""End to end: @reboot, one-shot `at` jobs, disk-full refusal."""

from __future__ import annotations

import datetime as dt
import time

from shared.enums import ExecutionStatus as S
from tests.e2e.agentkit import AgentProc, wait_for


def test_reboot_job_fires_once_per_agent_start(agent: AgentProc) -> None:
    """An @reboot job runs once at each agent start, and not again on reload."""
    agent.write_jobs("r.toml", '[job.boot]\ncron = "@reboot"\ncommand = "true"\n')
    agent.start()
    wait_for(lambda: len(agent.executions("boot")) == 1, what="the first @reboot run")
    agent.request("reload")
    assert agent.stop() == 0
    agent.start()
    rows = wait_for(
        lambda: [r for r in agent.executions("boot") if r.status is S.SUCCESS][1:] and True,
        what="the second @reboot run",
    )
    assert rows
    rows = agent.executions("boot")
    assert len(rows) == 2
    assert rows[0].scheduled_for != rows[1].scheduled_for


def test_at_job_fires_once_at_its_time(agent: AgentProc) -> None:
    """A one-shot `at` job runs once, at its time, and never again after a restart."""
    agent.start()
    when = dt.datetime.fromtimestamp(int(time.time()) + 2, dt.UTC)
    agent.write_jobs("at.toml", f'[job.once]\nat = "{when.isoformat()}"\ncommand = "true"\n')
    assert agent.request("reload")["added"] == ["once"]
    (row,) = wait_for(
        lambda: [r for r in agent.executions("once") if r.status.is_final], what="the run"
    )
    assert row.status is S.SUCCESS
    assert row.scheduled_for == when.timestamp()
    assert row.started_at is not None and row.started_at >= when.timestamp()
    assert agent.stop() == 0
    agent.start()
    assert agent.request("jobs")[0]["next_run"] is None
    assert len(agent.executions("once")) == 1


def test_disk_full_refuses_new_work_and_says_so(agent: AgentProc) -> None:
    """Below the configured free space no job starts: skipped with the reason, shown in status."""
    agent.write_config("[disk]\nmin_free_mb = 1000000000\n")
    agent.write_jobs("j.toml", '[job.j]\ncommand = "true"\n')
    agent.start()
    ex = agent.request("run", {"job": "j"})["execution"]
    assert ex["status"] == "skipped"
    assert "MiB free" in ex["reason"]
    status = agent.request("status")
    assert "MiB free" in status["refusing_new_work"]
    assert "NOT STARTING NEW WORK" in agent.cli("status").stdout
