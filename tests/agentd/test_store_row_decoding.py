"""Rows -> Execution in C (issue 8): the same records as the per-row path, whatever is stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from agentd.store import Store, executions
from shared.enums import ExecutionStatus, Trigger
from shared.models import Execution
from tests.agentd.storekit import T0, manual, open_store, scheduled


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def every_field_set() -> Execution:
    """A finished retry with every field away from its default (params out of order on purpose)."""
    return scheduled(
        "backup",
        trigger=Trigger.RETRY,
        status=ExecutionStatus.FAILED,
        started_at=T0 + 0.25,
        finished_at=T0 + 1.5,
        duration_ms=1250,
        exit_code=3,
        signal=9,
        retry_index=2,
        pid=4242,
        stdout_tail="out ✓\n",
        stderr_tail='err "quoted"\n',
        log_bytes=100,
        log_dropped_bytes=7,
        cpu_time_s=0.125,
        peak_rss_kb=2048,
        triggered_by="alice",
        approved_by="bob",
        params={"zone": "eu", "db": "main"},
        reason="exit 3",
    )


def per_row(store: Store) -> list[Execution]:
    """The rows decoded one by one, the way they were before issue 8."""

    def read(db: sqlite_utils.Database) -> list[Execution]:
        sql = f"{executions._SELECT} ORDER BY seq"
        return [executions._from_tuple(r) for r in db.execute(sql).fetchall()]

    return store.call_sync(read)


def test_batch_decoding_equals_per_row_decoding(store: Store) -> None:
    """changes_since returns exactly the records the per-row path built, every field included."""
    store.call_sync(executions.insert_execution, every_field_set())
    store.call_sync(executions.insert_execution, manual())
    got = store.call_sync(executions.changes_since, 0, 10)
    assert got == per_row(store)
    assert got[0].params == {"db": "main", "zone": "eu"}
    assert list(got[0].params) == ["db", "zone"]  # stored sorted, kept in that order
    assert type(got[0]) is Execution and got[0].status is ExecutionStatus.FAILED


def test_empty_params_decode_to_an_empty_dict(store: Store) -> None:
    """A row stored with params '{}' comes back with params == {} (a fresh dict)."""
    store.call_sync(executions.insert_execution, manual())
    (got,) = store.call_sync(executions.changes_since, 0, 10)
    assert got.params == {}


def test_a_value_msgspec_refuses_falls_back_to_per_row(store: Store) -> None:
    """A float written by hand into an INTEGER column still syncs, as it did before issue 8."""
    ex = store.call_sync(executions.insert_execution, manual())
    assert ex is not None
    store.call_sync(
        lambda db: db.execute("UPDATE executions SET duration_ms = 1.5 WHERE id = ?", [ex.id])
    )
    (got,) = store.call_sync(executions.changes_since, 0, 10)
    assert got.duration_ms == 1.5
    assert [got] == per_row(store)


def test_queries_and_lookups_agree(store: Store) -> None:
    """query_executions, unfinished and get_execution give the same record for one row."""
    ex = store.call_sync(executions.insert_execution, every_field_set())
    assert ex is not None
    queued = store.call_sync(executions.insert_execution, manual())
    assert queued is not None
    (listed,) = store.call_sync(executions.query_executions, job="backup", status="failed")
    assert listed == store.call_sync(executions.get_execution, ex.id) == ex
    assert store.call_sync(executions.unfinished) == [queued]
