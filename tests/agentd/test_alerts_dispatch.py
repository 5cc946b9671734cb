"""AlertDispatcher on a real store and real receivers: long-running, giving up, dropped channels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentd.alerts import store as alert_sql
from agentd.alerts.config import AlertsConfig, WebhookConfig
from agentd.alerts.delivery import AlertDispatcher
from agentd.store import Store, executions, jobs
from shared.enums import AlertKind
from shared.models import AlertPolicy, JobRecord
from shared.status import Event
from tests.agentd.storekit import T0, job, scheduled
from tests.e2e.alertkit import HttpReceiver, free_port


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "agentd.db", synchronous="NORMAL")
    yield store
    await store.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _dispatcher(
    store: Store, tmp_path: Path, config: AlertsConfig, table: dict[str, JobRecord], clock: Clock
) -> AlertDispatcher:
    return AlertDispatcher(
        store=store, config=config, agent="db1", data_dir=tmp_path, jobs=lambda: table, wall=clock
    )


async def _start(store: Store, at: float) -> str:
    ex = await store.call(executions.insert_execution, scheduled(at=at))
    assert ex is not None
    await store.call(executions.apply_event, ex.id, Event.START, now=at)
    return ex.id


async def test_long_running_past_factor_times_median(store: Store, tmp_path: Path) -> None:
    """A run past factor x the median of recent successes raises long_running once."""
    for n in range(5):
        exec_id = await _start(store, T0 + n)
        await store.call(
            executions.apply_event, exec_id, Event.SUCCEED, now=T0 + n, duration_ms=2000
        )
    running = await _start(store, T0 + 100)
    clock = Clock()
    dispatcher = _dispatcher(store, tmp_path, AlertsConfig(long_running_factor=3.0), {}, clock)
    clock.now = T0 + 105  # 5 s: under 3 x 2 s
    assert await dispatcher.check_long_running(clock.now) == 0
    clock.now = T0 + 107
    assert await dispatcher.check_long_running(clock.now) == 1
    assert await dispatcher.check_long_running(clock.now + 60) == 0
    (alert,) = await store.call(alert_sql.list_alerts, kind="long_running")
    assert alert.execution_id == running and alert.kind is AlertKind.LONG_RUNNING


async def test_job_threshold_without_history(store: Store, tmp_path: Path) -> None:
    """A job's long_running_s applies even before it has a median."""
    record = await store.call(
        jobs.put_job, job(alerts=AlertPolicy(long_running_s=30)), source="console", now=T0
    )
    await _start(store, T0)
    clock = Clock()
    config = AlertsConfig(long_running_factor=None)
    dispatcher = _dispatcher(store, tmp_path, config, {"backup": record}, clock)
    assert await dispatcher.check_long_running(T0 + 31) == 1


async def test_delivery_gives_up_after_max_attempts(store: Store, tmp_path: Path) -> None:
    """A receiver that never answers: attempts are recorded, then the delivery is failed."""
    exec_id = await _start(store, T0)
    await store.call(executions.apply_event, exec_id, Event.FAIL, now=T0 + 1)
    url = f"http://127.0.0.1:{free_port()}/gone"
    config = AlertsConfig(
        channels=("hook",), max_attempts=2, retry_base_s=1, retry_max_s=1,
        channel={"hook": WebhookConfig(url=url, timeout_s=1)},
    )  # fmt: skip
    clock = Clock()
    dispatcher = _dispatcher(store, tmp_path, config, {}, clock)
    await dispatcher.turn()
    clock.now += 2
    await dispatcher.turn()
    (alert,) = await store.call(alert_sql.list_alerts)
    (delivery,) = alert.deliveries
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert url in delivery.last_error


async def test_channel_removed_after_routing_is_dropped(store: Store, tmp_path: Path) -> None:
    """A delivery whose channel left agentd.toml is marked dropped, saying why."""
    exec_id = await _start(store, T0)
    await store.call(executions.apply_event, exec_id, Event.FAIL, now=T0 + 1)
    receiver = HttpReceiver()
    try:
        config = AlertsConfig(channels=("hook",), channel={"hook": WebhookConfig(url=receiver.url)})
        clock = Clock()
        first = _dispatcher(store, tmp_path, config, {}, clock)
        await first._route(clock.now)
        second = _dispatcher(store, tmp_path, AlertsConfig(), {}, clock)
        await second.turn()
    finally:
        receiver.stop()
    (alert,) = await store.call(alert_sql.list_alerts)
    assert alert.deliveries[0].state == "dropped" and receiver.posts == []
