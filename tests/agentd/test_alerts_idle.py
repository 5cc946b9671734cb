"""Issue 8: the alert dispatcher sleeps while nothing is pending and turns when woken.

A real store in a temporary directory; ``CountingStore`` is that store with a
count of its calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agentd.alerts import store as alert_sql
from agentd.alerts.config import AlertsConfig
from agentd.alerts.delivery import AlertDispatcher
from agentd.store import Store, executions
from shared.status import Event
from tests.agentd.storekit import scheduled

# The old loop turned every poll_s: 20 turns in the quiet window below.
POLL_S = 0.05
QUIET_S = 1.0


class CountingStore:
    """The real store, counting ``call``s (what an idle dispatcher would cost)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.store.call(fn, *args, **kwargs)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[AlertDispatcher, CountingStore]]:
    store = await Store.open(tmp_path / "agentd.db", synchronous="NORMAL")
    counting = CountingStore(store)
    dispatcher = AlertDispatcher(
        store=counting,  # type: ignore[arg-type]
        config=AlertsConfig(poll_s=POLL_S, long_running_check_s=3600.0),
        agent="db1",
        data_dir=tmp_path,
        jobs=dict,
    )
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher, counting
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_idle_dispatcher_makes_no_store_calls(running: Any) -> None:
    """With nothing pending and no wake(), the dispatcher does not touch the store."""
    _dispatcher, counting = running
    deadline = time.monotonic() + 5
    while counting.calls < 3:  # the first turn: long-running check, route, due
        assert time.monotonic() < deadline, "the first turn never ran"
        await asyncio.sleep(0.02)
    await asyncio.sleep(POLL_S * 4)  # the first turn finishes
    before = counting.calls
    # Asserting that nothing happens needs a window: 20 of the old polls.
    await asyncio.sleep(QUIET_S)
    assert counting.calls == before


async def test_wake_routes_a_new_alert(running: Any) -> None:
    """A failure recorded after the loop went to sleep is routed once wake() is called."""
    dispatcher, counting = running
    ex = await counting.store.call(executions.insert_execution, scheduled(at=time.time()))
    await counting.store.call(executions.apply_event, ex.id, Event.START, now=time.time())
    await counting.store.call(executions.apply_event, ex.id, Event.FAIL, now=time.time())
    dispatcher.wake()
    deadline = time.monotonic() + 5
    while await counting.store.call(alert_sql.unrouted):
        assert time.monotonic() < deadline, "the failure's alert was never routed"
        await asyncio.sleep(0.02)
    raised = await counting.store.call(alert_sql.list_alerts)
    assert [a.execution_id for a in raised] == [ex.id]
