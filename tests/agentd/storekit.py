"""Helpers for the store tests: a store on a real file, and execution/job factories."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentd.store import Store
from shared.enums import ExecutionStatus, Trigger
from shared.ids import new_execution_id, scheduled_execution_id
from shared.models import Execution, Job

T0 = 1_790_000_000.0  # a fixed instant in 2026: tests never read the clock
_RNG = random.Random(7)


def scheduled(job: str = "backup", at: float = T0, **fields: Any) -> Execution:
    """A queued scheduled execution of ``job``'s tick at ``at``, with its deterministic id."""
    values: dict[str, Any] = {
        "id": scheduled_execution_id(job, at),
        "job": job,
        "server": "db1",
        "run_id": scheduled_execution_id(job, at),
        "trigger": Trigger.SCHEDULE,
        "status": ExecutionStatus.QUEUED,
        "scheduled_for": at,
        "created_at": at,
    }
    values.update(fields)
    return Execution(**values)


def manual(job: str = "backup", at: float = T0, **fields: Any) -> Execution:
    """A queued manual execution of ``job`` created at ``at`` with a fresh id."""
    eid = new_execution_id(now=at, rng=_RNG)
    values: dict[str, Any] = {
        "id": eid,
        "job": job,
        "server": "db1",
        "run_id": eid,
        "trigger": Trigger.MANUAL,
        "status": ExecutionStatus.QUEUED,
        "created_at": at,
        "triggered_by": "alice",
    }
    values.update(fields)
    return Execution(**values)


def job(name: str = "backup", **fields: Any) -> Job:
    """A small valid job definition."""
    return Job(name=name, command="pg_dump db > /tmp/db.sql", cron="0 3 * * *", **fields)


def open_store(path: Path) -> Iterator[Store]:
    """A store on ``path``, closed afterwards (for fixtures).

    synchronous=NORMAL only spares the shared test machine thousands of fsyncs;
    durability across SIGKILL is the same, and test_store_crash uses the default FULL.
    """
    store = Store.open_sync(path, synchronous="NORMAL")
    try:
        yield store
    finally:
        store.close_sync()
