"""Execution rows: inserts, the status machine, field updates, queries and paging."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from agentd.store import Store, executions
from agentd.store.errors import InvalidField, InvalidQuery
from shared.enums import ExecutionStatus, Trigger
from shared.errors import IllegalTransition, UnknownExecution
from shared.status import Event
from tests.agentd.storekit import T0, manual, open_store, scheduled


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def test_insert_returns_row_with_seq(store: Store) -> None:
    """An inserted execution comes back as stored, with a seq assigned."""
    ex = store.call_sync(executions.insert_execution, scheduled(params={"day": "mon"}))
    assert ex is not None
    assert ex.seq > 0
    assert store.call_sync(executions.get_execution, ex.id) == ex


def test_duplicate_scheduled_tick_returns_none(store: Store) -> None:
    """A second insert of the same (job, scheduled_for) returns None, even with another id."""
    assert store.call_sync(executions.insert_execution, scheduled()) is not None
    again = scheduled(id="01J0000000000000000000AAAA")
    assert store.call_sync(executions.insert_execution, again) is None
    assert len(store.call_sync(executions.query_executions)) == 1


def test_duplicate_id_returns_none(store: Store) -> None:
    """A second insert with an id already stored returns None and changes nothing."""
    ex = manual()
    first = store.call_sync(executions.insert_execution, ex)
    assert store.call_sync(executions.insert_execution, ex) is None
    assert store.call_sync(executions.get_execution, ex.id) == first


def test_retry_of_a_tick_is_not_a_duplicate(store: Store) -> None:
    """A retry carrying the tick's scheduled_for is a new row, not a duplicate tick."""
    tick = scheduled()
    store.call_sync(executions.insert_execution, tick)
    retry = manual(trigger=Trigger.RETRY, scheduled_for=tick.scheduled_for, retry_index=1)
    assert store.call_sync(executions.insert_execution, retry) is not None


def test_scheduled_row_without_scheduled_for_is_refused(store: Store) -> None:
    """A scheduled execution with no scheduled_for is refused, naming the field."""
    with pytest.raises(InvalidField, match="scheduled_for"):
        store.call_sync(executions.insert_execution, manual(trigger=Trigger.SCHEDULE))


def test_row_inserted_final_gets_finished_at(store: Store) -> None:
    """A row recorded already skipped gets finished_at = created_at, so retention sees it."""
    ex = store.call_sync(executions.insert_execution, scheduled(status=ExecutionStatus.SKIPPED))
    assert ex is not None
    assert ex.finished_at == ex.created_at


def test_batch_insert_skips_duplicates(store: Store) -> None:
    """insert_executions records the new ticks and skips ones already there."""
    store.call_sync(executions.insert_execution, scheduled(at=T0))
    batch = [scheduled(at=T0), scheduled(at=T0 + 60), scheduled(at=T0 + 120)]
    done = store.call_sync(executions.insert_executions, batch)
    assert [e.scheduled_for for e in done] == [T0 + 60, T0 + 120]
    assert len(store.call_sync(executions.query_executions)) == 3


def test_start_sets_running_pid_and_started_at(store: Store) -> None:
    """START moves queued to running, sets started_at from now, and stores the pid."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    run = store.call_sync(executions.apply_event, ex.id, Event.START, now=T0 + 1, pid=4242)
    assert (run.status, run.started_at, run.pid) == (ExecutionStatus.RUNNING, T0 + 1, 4242)
    assert run.seq > ex.seq
    assert store.call_sync(executions.get_execution, ex.id) == run


def test_finish_sets_finished_at_and_duration(store: Store) -> None:
    """A final event sets finished_at from now and derives duration_ms from started_at."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    store.call_sync(executions.apply_event, ex.id, Event.START, now=T0 + 1)
    done = store.call_sync(executions.apply_event, ex.id, Event.FAIL, now=T0 + 3.5, exit_code=3)
    assert (done.status, done.finished_at, done.duration_ms, done.exit_code) == (
        ExecutionStatus.FAILED,
        T0 + 3.5,
        2500,
        3,
    )


def test_illegal_transition_raises_and_leaves_row_unchanged(store: Store) -> None:
    """SUCCEED on a queued row raises IllegalTransition; status, fields and seq stay."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    with pytest.raises(IllegalTransition, match="cannot succeed an execution that is queued"):
        store.call_sync(executions.apply_event, ex.id, Event.SUCCEED, now=T0, exit_code=0)
    assert store.call_sync(executions.get_execution, ex.id) == ex


def test_event_on_unknown_execution_raises(store: Store) -> None:
    """apply_event on an id never stored raises UnknownExecution naming it."""
    with pytest.raises(UnknownExecution, match="NOPE"):
        store.call_sync(executions.apply_event, "NOPE", Event.START, now=T0)


def test_event_cannot_set_fixed_fields(store: Store) -> None:
    """apply_event refuses to change a fixed field such as job, naming it."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    with pytest.raises(InvalidField, match="'job'"):
        store.call_sync(executions.apply_event, ex.id, Event.START, now=T0, job="other")


def test_status_and_seq_roll_back_together(store: Store) -> None:
    """If the surrounding transaction fails, neither the status nor the seq counter moved."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None

    def start_then_fail(db: sqlite_utils.Database) -> None:
        with db.atomic():
            executions.apply_event(db, ex.id, Event.START, now=T0)
            raise RuntimeError("crash after the update")

    with pytest.raises(RuntimeError):
        store.call_sync(start_then_fail)
    assert store.call_sync(executions.get_execution, ex.id) == ex
    run = store.call_sync(executions.apply_event, ex.id, Event.START, now=T0)
    assert run.seq == ex.seq + 1


def test_update_fields_bumps_seq(store: Store) -> None:
    """update_fields stores tails and sizes and takes a new seq."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    new = store.call_sync(executions.update_fields, ex.id, stdout_tail="ok\n", log_bytes=3)
    assert (new.stdout_tail, new.log_bytes, new.status) == ("ok\n", 3, ExecutionStatus.QUEUED)
    assert new.seq > ex.seq


def test_update_fields_refuses_status(store: Store) -> None:
    """update_fields cannot change status: that goes through apply_event."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    with pytest.raises(InvalidField, match="'status'"):
        store.call_sync(executions.update_fields, ex.id, status="success")


def test_update_fields_bad_value_leaves_row_unchanged(store: Store) -> None:
    """A value of the wrong type raises InvalidField naming the field; nothing is written."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    with pytest.raises(InvalidField, match="log_bytes"):
        store.call_sync(executions.update_fields, ex.id, log_bytes="lots")
    assert store.call_sync(executions.get_execution, ex.id) == ex


def test_unfinished_lists_only_open_rows(store: Store) -> None:
    """unfinished returns pending/awaiting/queued/running rows and not final ones."""
    done = store.call_sync(executions.insert_execution, scheduled(at=T0))
    queued = store.call_sync(executions.insert_execution, scheduled(at=T0 + 60))
    pending = store.call_sync(executions.insert_execution, manual(status=ExecutionStatus.PENDING))
    assert done and queued and pending
    store.call_sync(executions.apply_event, done.id, Event.CANCEL, now=T0)
    assert {e.id for e in store.call_sync(executions.unfinished)} == {queued.id, pending.id}


def test_count_active_counts_queued_and_running_of_one_job(store: Store) -> None:
    """count_active counts the job's queued and running rows only."""
    a = store.call_sync(executions.insert_execution, scheduled(at=T0))
    store.call_sync(executions.insert_execution, scheduled(at=T0 + 60))
    store.call_sync(executions.insert_execution, scheduled(job="other", at=T0))
    store.call_sync(executions.insert_execution, manual(status=ExecutionStatus.PENDING))
    assert a is not None
    store.call_sync(executions.apply_event, a.id, Event.START, now=T0)
    assert store.call_sync(executions.count_active, "backup") == 2
    store.call_sync(executions.apply_event, a.id, Event.SUCCEED, now=T0)
    assert store.call_sync(executions.count_active, "backup") == 1


def test_last_scheduled_for_is_latest_tick(store: Store) -> None:
    """last_scheduled_for is the latest tick of that job, ignoring manual runs and other jobs."""
    assert store.call_sync(executions.last_scheduled_for, "backup") is None
    store.call_sync(executions.insert_execution, scheduled(at=T0 + 120))
    store.call_sync(executions.insert_execution, scheduled(at=T0))
    store.call_sync(executions.insert_execution, scheduled(job="other", at=T0 + 999))
    store.call_sync(executions.insert_execution, manual(scheduled_for=T0 + 500))
    assert store.call_sync(executions.last_scheduled_for, "backup") == T0 + 120


def _history(store: Store) -> list[str]:
    """Inserts a varied history; returns ids newest first."""
    ids = []
    for i in range(30):
        job = "backup" if i % 3 else "rotate"
        ex = store.call_sync(executions.insert_execution, scheduled(job=job, at=T0 + 60 * i))
        assert ex is not None
        if i % 2:
            store.call_sync(executions.apply_event, ex.id, Event.START, now=T0 + 60 * i)
            store.call_sync(executions.apply_event, ex.id, Event.FAIL, now=T0 + 60 * i + 1)
        ids.append(ex.id)
    return ids[::-1]


def test_query_filters_by_job_status_and_time(store: Store) -> None:
    """Filters combine: job, status and a created_at window."""
    _history(store)
    rows = store.call_sync(
        executions.query_executions,
        job="backup",
        status="failed",
        since=T0 + 60 * 10,
        until=T0 + 60 * 20,
    )
    got = [round((e.created_at - T0) / 60) for e in rows]
    assert got == [i for i in range(19, 9, -1) if i % 3 and i % 2]


def test_query_filters_by_trigger_and_run_id(store: Store) -> None:
    """trigger and run_id filters pick the matching rows only."""
    _history(store)
    m = manual(run_id="RUN1")
    store.call_sync(executions.insert_execution, m)
    assert [e.id for e in store.call_sync(executions.query_executions, trigger="manual")] == [m.id]
    assert [e.id for e in store.call_sync(executions.query_executions, run_id="RUN1")] == [m.id]


def test_keyset_paging_walks_everything_once_newest_first(store: Store) -> None:
    """Paging with before= returns every row exactly once, newest first."""
    ids = _history(store)
    seen: list[str] = []
    before = None
    while page := store.call_sync(executions.query_executions, limit=7, before=before):
        seen += [e.id for e in page]
        before = page[-1].id
    assert seen == ids


def test_unknown_status_filter_names_allowed_values(store: Store) -> None:
    """A misspelt status raises InvalidQuery listing the real ones."""
    with pytest.raises(InvalidQuery, match=r"'faild'.*failed"):
        store.call_sync(executions.query_executions, status="faild")


def test_limit_out_of_range_is_refused(store: Store) -> None:
    """A limit of zero is refused with the allowed range."""
    with pytest.raises(InvalidQuery, match="limit: must be between 1"):
        store.call_sync(executions.query_executions, limit=0)


def test_unfinished_statuses_are_exactly_the_non_final_ones() -> None:
    """UNFINISHED lists every status that is not final, and nothing else."""
    assert set(executions.UNFINISHED) == {s for s in ExecutionStatus if not s.is_final}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM executions WHERE job = 'b' AND {u} AND status = 'queued'",
        "SELECT id FROM executions WHERE {u}",  # few rows: sorting them is fine
        "SELECT id FROM executions WHERE status IN ('failed') AND id >= 'A' ORDER BY id DESC",
        "SELECT id FROM executions WHERE job = 'b' ORDER BY id DESC LIMIT 50",
        "SELECT id FROM executions WHERE seq > 5 ORDER BY seq LIMIT 500",
    ],
)
def test_hot_queries_search_an_index(store: Store, sql: str) -> None:
    """The daemon's and the history's hot queries search an index, never scan the table."""
    text = sql.format(u=executions._UNFINISHED_SQL)
    plan = store.call_sync(lambda db: str(db.execute(f"EXPLAIN QUERY PLAN {text}").fetchall()))
    assert "SEARCH executions USING" in plan
    assert "TEMP B-TREE" not in plan


def test_id_floor_bounds_ids_of_that_instant() -> None:
    """Ids made at an instant sort at or above id_floor of it and below id_floor of the next ms."""
    for ex in (manual(at=T0 + 0.5), scheduled(at=T0 + 0.5)):
        assert executions.id_floor(T0 + 0.5) <= ex.id < executions.id_floor(T0 + 0.502)


def test_since_uses_the_time_the_run_was_due(store: Store) -> None:
    """A tick fired late (misfire) is found by the time it was due, not when it was recorded."""
    late = scheduled(at=T0, created_at=T0 + 3 * 3600)
    store.call_sync(executions.insert_execution, late)
    assert store.call_sync(executions.query_executions, since=T0 + 3600) == []
    assert [e.id for e in store.call_sync(executions.query_executions, since=T0)] == [late.id]
