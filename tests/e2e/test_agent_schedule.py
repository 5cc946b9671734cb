"""End to end: the agent fires cron ticks, once each, across restarts and kill -9."""

from __future__ import annotations

import itertools
import time

from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.ids import scheduled_execution_id
from tests.e2e.agentkit import AgentProc, wait_for

EVERY_SECOND = """
[job.tick]
cron = "* * * * * *"
command = "echo \\"$SQU_EXECUTION_ID\\" >> {out}"
misfire = "run_all"
misfire_grace_s = 600
concurrency = "allow"
"""


def _ran(agent: AgentProc) -> list[str]:
    path = agent.data_dir / "ran.txt"
    return path.read_text().split() if path.exists() else []


def _ticks(agent: AgentProc) -> list[float]:
    return [r.scheduled_for for r in agent.executions("tick") if r.trigger is Trigger.SCHEDULE]


def test_every_second_job_produces_rows(agent: AgentProc) -> None:
    """A `* * * * * *` job gets one successful execution per second, with its tick's id."""
    agent.write_jobs("tick.toml", EVERY_SECOND.format(out=agent.data_dir / "ran.txt"))
    agent.start()
    done = wait_for(
        lambda: [r for r in agent.executions("tick") if r.status is S.SUCCESS][3:] and True,
        what="four successful ticks",
    )
    assert done
    rows = agent.executions("tick")
    seconds = sorted(r.scheduled_for for r in rows)
    assert all(t == int(t) for t in seconds)
    assert [b - a for a, b in itertools.pairwise(seconds)] == [1.0] * (len(seconds) - 1)
    assert all(r.id == scheduled_execution_id("tick", r.scheduled_for) for r in rows)


def _restart_keeps_ticks_unique(agent: AgentProc, *, kill: bool) -> None:
    agent.write_jobs("tick.toml", EVERY_SECOND.format(out=agent.data_dir / "ran.txt"))
    agent.start()
    wait_for(lambda: len(_ran(agent)) >= 2, what="two ticks before the restart")
    if kill:
        agent.kill9()
    else:
        assert agent.stop() == 0
    before = max(_ticks(agent))
    agent.start()
    wait_for(lambda: len([t for t in _ticks(agent) if t > before + 1]) >= 2, what="ticks after")
    agent.stop()
    ticks = _ticks(agent)
    ran = _ran(agent)
    assert len(ticks) == len(set(ticks)), "a tick has two rows"
    assert len(ran) == len(set(ran)), "an execution ran twice"
    # No tick lost: run_all fills the downtime, so the seconds are contiguous.
    ordered = sorted(ticks)
    assert ordered == [ordered[0] + i for i in range(len(ordered))]


def test_no_tick_twice_across_sigterm_restart(agent: AgentProc) -> None:
    """Stopping with SIGTERM and starting again neither repeats nor loses a tick."""
    _restart_keeps_ticks_unique(agent, kill=False)


def test_no_tick_twice_across_kill9_restart(agent: AgentProc) -> None:
    """kill -9 of the agent and a restart neither repeats nor loses a tick."""
    _restart_keeps_ticks_unique(agent, kill=True)


def test_disabled_job_is_not_scheduled_and_resumes_without_backlog(agent: AgentProc) -> None:
    """A disabled job gets no ticks; enabled again it runs from then on, with no backlog."""
    path = agent.data_dir / "ran.txt"
    text = EVERY_SECOND.format(out=path)
    agent.write_jobs("tick.toml", text + "enabled = false\n")
    agent.start()
    assert agent.request("jobs")[0]["next_run"] is None
    assert agent.request("run", {"job": "tick"}, timeout_s=30)["execution"]["trigger"] == "manual"
    enabled_at = time.time()
    agent.write_jobs("tick.toml", text)
    assert agent.request("reload")["changed"] == ["tick"]
    wait_for(lambda: len(_ticks(agent)) >= 2, what="ticks after enabling")
    assert min(_ticks(agent)) > enabled_at - 1


def test_forbid_skips_ticks_while_the_previous_run_is_running(agent: AgentProc) -> None:
    """concurrency = forbid on a schedule: ticks during a run are skipped; runs never overlap."""
    agent.write_jobs(
        "slow.toml",
        """
        [job.slow]
        cron = "* * * * * *"
        command = "sleep 1.6"
        concurrency = "forbid"
        """,
    )
    agent.start()
    rows = wait_for(
        lambda: (
            (rs := agent.executions("slow"))
            and any(r.status is S.SKIPPED for r in rs)
            and sum(r.status is S.SUCCESS for r in rs) >= 2
            and rs
        ),
        what="a skipped tick and two runs",
        timeout_s=20,
    )
    skipped = [r for r in rows if r.status is S.SKIPPED]
    assert all("concurrency=forbid" in r.reason for r in skipped)
    ran = sorted((r.started_at, r.finished_at) for r in rows if r.status is S.SUCCESS)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ran)), "two runs overlapped"
