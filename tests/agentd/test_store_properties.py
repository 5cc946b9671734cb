"""Property test: any sequence of store operations keeps the seq and sync invariants."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentd.store import Store, executions, jobs
from shared.errors import IllegalTransition, UnknownJob
from shared.status import TRANSITIONS, Event
from tests.agentd.storekit import T0, job, scheduled

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 5)),
        st.tuples(st.just("event"), st.integers(0, 5), st.sampled_from(list(Event))),
        st.tuples(st.just("update"), st.integers(0, 5)),
        st.tuples(st.just("put_job"), st.integers(0, 2)),
        st.tuples(st.just("delete_job"), st.integers(0, 2)),
        st.tuples(st.just("prune"), st.integers(0, 5)),
    ),
    max_size=30,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_any_operation_sequence_keeps_seq_and_sync_invariants(ops: list[tuple]) -> None:
    """Every change gets a seq above all before it; failures change nothing; sync sees all."""
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open_sync(Path(tmp) / "agent.db", synchronous="NORMAL")
        try:
            _check(store, ops)
        finally:
            store.close_sync()


def _check(store: Store, ops: list[tuple]) -> None:
    top = 0  # highest seq handed out so far
    for op, *args in ops:
        if op == "insert":
            ex = store.call_sync(executions.insert_execution, scheduled(at=T0 + args[0]))
            if ex is not None:
                assert ex.seq > top
                top = ex.seq
        elif op in ("event", "update"):
            rows = store.call_sync(executions.query_executions, limit=100)
            if not rows:
                continue
            before = rows[args[0] % len(rows)]
            if op == "update":
                after = store.call_sync(executions.update_fields, before.id, log_bytes=args[0])
            elif (before.status, args[1]) in TRANSITIONS:
                after = store.call_sync(executions.apply_event, before.id, args[1], now=T0 + 9)
            else:
                try:
                    store.call_sync(executions.apply_event, before.id, args[1], now=T0 + 9)
                except IllegalTransition:
                    assert store.call_sync(executions.get_execution, before.id) == before
                    continue
                raise AssertionError("an illegal transition was accepted")
            assert after.seq > top
            top = after.seq
        elif op == "put_job":
            store.call_sync(
                jobs.put_job, job(f"j{args[0]}", timeout_s=top + 1), source="console", now=T0
            )
            new_top = _job_top(store)  # the definition always differs, so it is a change
            assert new_top > top
            top = new_top
        elif op == "delete_job":
            try:
                store.call_sync(jobs.delete_job, f"j{args[0]}", now=T0, by="x")
            except UnknownJob:
                continue
            new_top = _job_top(store)
            assert new_top > top
            top = new_top
        else:
            store.call_sync(executions.prune, older_than=T0 + 10 + args[0])
            assert store.call_sync(executions.history_floor) <= top + 1
    held = store.call_sync(executions.query_executions, limit=10_000)
    seen, cursor = [], 0
    while batch := store.call_sync(executions.changes_since, cursor, 3):
        seen += batch
        cursor = batch[-1].seq
    assert sorted(seen, key=lambda e: e.id) == sorted(held, key=lambda e: e.id)
    assert all(e.seq <= top for e in seen)


def _job_top(store: Store) -> int:
    changes = store.call_sync(jobs.changes_since, 0, 100)
    return max((c.seq for c in changes), default=0)
