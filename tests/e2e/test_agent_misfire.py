"""End to end: after downtime the agent applies each job's misfire policy and grace window.

Downtime is simulated by writing the job's scheduler cursor (``sched:<job>`` in
the store's meta table, the only state the scheduler resumes from) four
minutes in the past before the agent starts: to the agent, the ticks since
were missed, exactly as after four minutes of real downtime.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentd.daemon import db_path
from agentd.store import Store, meta
from shared.enums import ExecutionStatus as S
from shared.jobs import definition_hash, parse_jobs_toml
from tests.e2e.agentkit import AgentProc, wait_for


def _set_cursor(agent: AgentProc, path: Path, cursor: float) -> None:
    """Store the cursor a previous agent would have left for every job in ``path``."""
    store = Store.open_sync(db_path(agent.data_dir))
    try:
        for job in parse_jobs_toml(path.read_text(), where=str(path)):
            state = {"cursor": cursor, "hash": definition_hash(job), "enabled": True}
            store.call_sync(meta.set, f"sched:{job.name}", state)
    finally:
        store.close_sync()


@pytest.mark.parametrize(
    ("policy", "fired_ages"),
    [("skip", []), ("run_once", [0]), ("run_all", [60, 0])],
)
def test_misfire_policy_after_downtime(
    agent: AgentProc, policy: str, fired_ages: list[int]
) -> None:
    """Missed ticks fire per policy (grace 120 s) and the others are recorded as skipped."""
    now = time.time()
    # One tick a minute, at the second that was 25 s ago: the last missed tick is
    # older than the on-time tolerance (10 s) and the next is 35 s away.
    last = float(int(now) - 25)
    second = int(last) % 60
    path = agent.write_jobs(
        "m.toml",
        f"""
        [job.m]
        cron = "{second} * * * * *"
        command = "true"
        misfire = "{policy}"
        misfire_grace_s = 120
        concurrency = "allow"
        """,
    )
    _set_cursor(agent, path, last - 4 * 60 - 1)
    agent.start()
    missed = [last - 60 * k for k in (4, 3, 2, 1, 0)]

    def settled() -> list:
        rows = [r for r in agent.executions("m") if r.scheduled_for <= last]
        done = len(rows) == len(missed) and all(r.status.is_final for r in rows)
        return rows if done else []

    rows = wait_for(settled, what="every missed tick to be settled")
    assert sorted(r.scheduled_for for r in rows) == missed
    fired = sorted(r.scheduled_for for r in rows if r.status is not S.SKIPPED)
    assert fired == [last - age for age in fired_ages]
    assert all("misfire" in r.reason for r in rows if r.status is S.SKIPPED), [
        r.reason for r in rows
    ]
