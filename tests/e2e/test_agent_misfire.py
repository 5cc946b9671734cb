"""End to end: after downtime the agent applies each job's misfire policy and grace window.

Downtime is simulated by writing each job's scheduler cursor (``sched:<job>``
in the store's meta table, the only state the scheduler resumes from) four
minutes in the past before the agent starts: to the agent, the ticks since
were missed, exactly as after four minutes of real downtime. One agent holds
one job per policy.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentd.daemon import db_path
from agentd.store import Store, meta
from shared.enums import ExecutionStatus as S
from shared.jobs import definition_hash, parse_jobs_toml
from shared.models import Execution
from tests.e2e.agentkit import AgentProc, wait_for

POLICIES = ("skip", "run_once", "run_all")


def _set_cursor(agent: AgentProc, path: Path, cursor: float) -> None:
    """Store the cursor a previous agent would have left for every job in ``path``."""
    store = Store.open_sync(db_path(agent.data_dir))
    try:
        for job in parse_jobs_toml(path.read_text(), where=str(path)):
            state = {"cursor": cursor, "hash": definition_hash(job), "enabled": True}
            store.call_sync(meta.set, f"sched:{job.name}", state)
    finally:
        store.close_sync()


@pytest.fixture(scope="module")
def after_downtime(shared_agent: AgentProc) -> tuple[AgentProc, float]:
    """An agent restarted after 'four minutes down', and the last tick it missed."""
    # One tick a minute, at the second that was 25 s ago: the last missed tick is
    # older than the on-time tolerance (10 s) and the next one is 35 s away.
    last = float(int(time.time()) - 25)
    text = "".join(
        f"""
        [job.{policy.replace("_", "-")}]
        cron = "{int(last) % 60} * * * * *"
        command = "true"
        misfire = "{policy}"
        misfire_grace_s = 120
        concurrency = "allow"
        """
        for policy in POLICIES
    )
    path = shared_agent.write_jobs("m.toml", text)
    _set_cursor(shared_agent, path, last - 4 * 60 - 1)
    shared_agent.start()
    return shared_agent, last


def _settled(agent: AgentProc, job: str, last: float, missed: int) -> list[Execution]:
    rows = [r for r in agent.executions(job) if (r.scheduled_for or 0) <= last]
    return rows if len(rows) == missed and all(r.status.is_final for r in rows) else []


@pytest.mark.parametrize(
    ("policy", "fired_ages"),
    [("skip", []), ("run_once", [0]), ("run_all", [60, 0])],
)
def test_misfire_policy_after_downtime(
    after_downtime: tuple[AgentProc, float], policy: str, fired_ages: list[int]
) -> None:
    """Missed ticks fire per policy (grace 120 s); the others are recorded as skipped."""
    agent, last = after_downtime
    job = policy.replace("_", "-")
    missed = [last - 60 * k for k in (4, 3, 2, 1, 0)]
    rows = wait_for(lambda: _settled(agent, job, last, len(missed)), what=f"{job} settled")
    assert sorted(r.scheduled_for for r in rows) == missed
    fired = sorted(r.scheduled_for for r in rows if r.status is not S.SKIPPED)
    assert fired == [last - age for age in fired_ages]
    skipped = [r for r in rows if r.status is S.SKIPPED]
    assert all("misfire" in r.reason for r in skipped), [r.reason for r in skipped]
