"""The sync feed: one seq counter over every change, batches, retention and the history floor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.store import Store, executions, jobs
from shared.enums import ExecutionStatus
from shared.status import Event
from tests.agentd.storekit import T0, job, manual, open_store, scheduled

DAY = 86_400.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def test_seq_strictly_increases_across_every_change_kind(store: Store) -> None:
    """Inserts, events, field updates and job puts, enables and deletes each take a higher seq."""
    seqs = []
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    seqs.append(ex.seq)
    seqs.append(store.call_sync(executions.apply_event, ex.id, Event.START, now=T0).seq)
    seqs.append(store.call_sync(executions.update_fields, ex.id, log_bytes=10).seq)
    store.call_sync(jobs.put_job, job(), source="console", now=T0, by="alice")
    seqs.append(store.call_sync(jobs.changes_since, 0, 100)[-1].seq)
    store.call_sync(jobs.set_enabled, "backup", False, now=T0, by="alice")
    seqs.append(store.call_sync(jobs.changes_since, 0, 100)[-1].seq)
    store.call_sync(jobs.delete_job, "backup", now=T0, by="alice")
    seqs.append(store.call_sync(jobs.changes_since, 0, 100)[-1].seq)
    seqs.append(store.call_sync(executions.apply_event, ex.id, Event.SUCCEED, now=T0).seq)
    assert len(seqs) == 7
    assert seqs == sorted(set(seqs))


def test_seq_is_never_reused_after_delete_and_restart(tmp_path: Path) -> None:
    """After pruning the newest rows and reopening, the next seq is above every seq handed out."""
    path = tmp_path / "agent.db"
    store = Store.open_sync(path)
    highest = 0
    for i in range(5):
        ex = store.call_sync(executions.insert_execution, manual(at=T0 + i))
        assert ex is not None
        highest = store.call_sync(executions.apply_event, ex.id, Event.CANCEL, now=T0 + i).seq
    assert store.call_sync(executions.prune, older_than=T0 + DAY) == 5
    store.close_sync()
    store = Store.open_sync(path)
    again = store.call_sync(executions.insert_execution, manual(at=T0 + 10))
    store.close_sync()
    assert again is not None
    assert again.seq == highest + 1


def test_changes_since_in_batches_returns_each_row_once_in_seq_order(store: Store) -> None:
    """Reading in batches of 4 from 0 returns every execution once, ascending by seq."""
    inserted = [
        store.call_sync(executions.insert_execution, scheduled(at=T0 + i)) for i in range(10)
    ]
    cursor, seen = 0, []
    while batch := store.call_sync(executions.changes_since, cursor, 4):
        assert len(batch) <= 4
        seen += batch
        cursor = batch[-1].seq
    assert [e.seq for e in seen] == sorted(e.seq for e in seen)
    assert {e.id for e in seen} == {e.id for e in inserted if e}


def test_changed_row_shows_up_again_after_the_cursor(store: Store) -> None:
    """A row changed after a console read it comes back in the next batch, in its new state."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    cursor = store.call_sync(executions.changes_since, 0, 100)[-1].seq
    store.call_sync(executions.apply_event, ex.id, Event.START, now=T0)
    again = store.call_sync(executions.changes_since, cursor, 100)
    assert [(e.id, e.status) for e in again] == [(ex.id, ExecutionStatus.RUNNING)]


def test_prune_removes_old_finished_rows_and_moves_history_floor(store: Store) -> None:
    """prune deletes finished rows older than the cutoff and raises the floor past them."""
    assert store.call_sync(executions.history_floor) == 1
    old = store.call_sync(executions.insert_execution, manual(at=T0))
    assert old is not None
    old = store.call_sync(executions.apply_event, old.id, Event.CANCEL, now=T0)
    new = store.call_sync(executions.insert_execution, manual(at=T0 + 2 * DAY))
    assert new is not None
    assert store.call_sync(executions.prune, older_than=T0 + DAY) == 1
    assert store.call_sync(executions.history_floor) == old.seq + 1
    assert [e.id for e in store.call_sync(executions.query_executions)] == [new.id]


def test_prune_keeps_unfinished_rows(store: Store) -> None:
    """An old execution still queued or running is never pruned."""
    ex = store.call_sync(executions.insert_execution, manual(at=T0))
    assert ex is not None
    store.call_sync(executions.apply_event, ex.id, Event.START, now=T0)
    assert store.call_sync(executions.prune, older_than=T0 + 100 * DAY) == 0
    assert store.call_sync(executions.history_floor) == 1


def test_prune_keeps_newest_tick_of_each_job(store: Store) -> None:
    """The latest scheduled row of a job survives pruning, so that tick can never fire again."""
    for i in range(3):
        ex = store.call_sync(executions.insert_execution, scheduled(at=T0 + i))
        assert ex is not None
        store.call_sync(executions.apply_event, ex.id, Event.SKIP, now=T0 + i)
    assert store.call_sync(executions.prune, older_than=T0 + DAY) == 2
    assert store.call_sync(executions.last_scheduled_for, "backup") == T0 + 2
    assert store.call_sync(executions.insert_execution, scheduled(at=T0 + 2)) is None


def test_prune_works_in_batches(store: Store) -> None:
    """More rows than one prune batch are all removed."""
    many = [manual(at=T0 + i, status=ExecutionStatus.CANCELLED) for i in range(1_200)]
    store.call_sync(executions.insert_executions, many)
    assert store.call_sync(executions.prune, older_than=T0 + DAY) == 1_200
    assert store.call_sync(executions.query_executions) == []


def test_history_floor_never_moves_back(store: Store) -> None:
    """Pruning a later, smaller batch does not lower the floor."""
    executions_ = [manual(at=T0 + i, status=ExecutionStatus.CANCELLED) for i in range(3)]
    store.call_sync(executions.insert_executions, executions_)
    store.call_sync(executions.prune, older_than=T0 + DAY)
    floor = store.call_sync(executions.history_floor)
    store.call_sync(executions.raise_history_floor, 2)
    assert store.call_sync(executions.history_floor) == floor
