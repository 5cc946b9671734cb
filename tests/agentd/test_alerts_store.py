"""agentd/alerts/store: alerts commit with the state change, route, deliver, ack and sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.alerts import store as alert_sql
from agentd.store import Store, executions, jobs
from shared.alerts import MISSED_REASON
from shared.enums import AlertKind
from shared.enums import ExecutionStatus as S
from shared.models import RetryPolicy
from shared.status import Event
from tests.agentd.storekit import T0, job, open_store, scheduled


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def _run(store: Store, event: Event, at: float = T0, **fields: object) -> str:
    ex = store.call_sync(executions.insert_execution, scheduled(at=at))
    assert ex is not None
    store.call_sync(executions.apply_event, ex.id, Event.START, now=at)
    store.call_sync(executions.apply_event, ex.id, event, now=at + 1, **fields)
    return ex.id


def test_failure_records_one_alert_with_the_change(store: Store) -> None:
    """A failed execution has its failed alert as soon as the status change returns."""
    exec_id = _run(store, Event.FAIL, exit_code=2)
    (alert,) = store.call_sync(alert_sql.list_alerts)
    assert (alert.kind, alert.execution_id, alert.exit_code) == (AlertKind.FAILED, exec_id, 2)


def test_rolled_back_change_leaves_no_alert(store: Store) -> None:
    """An alert never exists without the state change that raised it."""
    ex = store.call_sync(executions.insert_execution, scheduled())
    assert ex is not None
    store.call_sync(executions.apply_event, ex.id, Event.START, now=T0)

    def fail_then_abort(db: object) -> None:
        with db.atomic():  # type: ignore[attr-defined]
            executions.apply_event(db, ex.id, Event.FAIL, now=T0 + 1)  # type: ignore[arg-type]
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        store.call_sync(fail_then_abort)
    assert store.call_sync(alert_sql.list_alerts) == []
    assert store.call_sync(executions.get_execution, ex.id).status is S.RUNNING


def test_retry_policy_turns_failure_into_retrying(store: Store) -> None:
    """A job with retries left raises retrying (attempt 1 of 3), not failed."""
    store.call_sync(jobs.put_job, job(retry=RetryPolicy(count=2)), source="console", now=T0)
    _run(store, Event.FAIL)
    (alert,) = store.call_sync(alert_sql.list_alerts)
    assert (alert.kind, alert.attempt, alert.attempts) == (AlertKind.RETRYING, 1, 3)


def test_success_after_failure_is_recovered_once(store: Store) -> None:
    """The first success after a failure raises recovered; the next success nothing."""
    _run(store, Event.FAIL)
    _run(store, Event.SUCCEED, at=T0 + 60)
    _run(store, Event.SUCCEED, at=T0 + 120)
    kinds = [a.kind for a in store.call_sync(alert_sql.list_alerts)]
    assert kinds == [AlertKind.RECOVERED, AlertKind.FAILED]


def test_missed_tick_row_raises_missed(store: Store) -> None:
    """A skipped row the scheduler inserts for downtime raises missed, in the same insert."""
    row = scheduled(status=S.SKIPPED, reason=f"{MISSED_REASON} (misfire = skip)")
    store.call_sync(executions.insert_executions, [row])
    (alert,) = store.call_sync(alert_sql.list_alerts)
    assert alert.kind is AlertKind.MISSED


def test_route_deliver_and_sync(store: Store) -> None:
    """Routing adds a pending delivery; a send outcome is recorded and syncs with a new seq."""
    _run(store, Event.TIME_OUT)
    (alert,) = store.call_sync(alert_sql.unrouted)
    store.call_sync(alert_sql.route, [(alert, ["hook"])], now=T0)
    assert store.call_sync(alert_sql.unrouted) == []
    (due,) = store.call_sync(alert_sql.due_deliveries, now=T0)
    store.call_sync(
        alert_sql.record_outcome, [due.delivery_id], now=T0, message_id="m", error="refused",
        next_attempt_at=T0 + 5,
    )  # fmt: skip
    assert store.call_sync(alert_sql.due_deliveries, now=T0 + 1) == []
    store.call_sync(alert_sql.record_outcome, [due.delivery_id], now=T0 + 5, message_id="m")
    (synced,) = store.call_sync(alert_sql.changes_since, alert.seq, 10)
    assert synced.deliveries[0].state == "sent" and synced.deliveries[0].attempts == 2
    assert store.call_sync(alert_sql.sent_counts, since=T0) == {("hook", "backup"): 1}


def test_ack_is_recorded_once_and_unknown_ids_refused(store: Store) -> None:
    """Acknowledging keeps the first acknowledger; an unknown id is refused by name."""
    _run(store, Event.FAIL)
    (alert,) = store.call_sync(alert_sql.list_alerts)
    store.call_sync(alert_sql.ack, [alert.id], by="alice", now=T0)
    (again,) = store.call_sync(alert_sql.ack, [alert.id], by="bob", now=T0 + 1)
    assert (again.acked_by, store.call_sync(alert_sql.unacked_count)) == ("alice", 0)
    with pytest.raises(alert_sql.UnknownAlert, match="no alert 'nope'"):
        store.call_sync(alert_sql.ack, ["nope"], by="alice", now=T0)


def test_lost_execution_raises_lost(store: Store) -> None:
    """An execution the agent could not account for raises lost."""
    _run(store, Event.LOSE, reason="the machine rebooted while it ran")
    (alert,) = store.call_sync(alert_sql.list_alerts)
    assert (alert.kind, alert.reason) == (AlertKind.LOST, "the machine rebooted while it ran")
