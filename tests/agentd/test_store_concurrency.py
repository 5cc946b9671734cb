"""Many coroutines sharing one store: serialised writes, distinct seqs, cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agentd.store import Store, executions
from shared.status import Event
from tests.agentd.storekit import T0, scheduled


async def test_many_concurrent_calls_get_distinct_consecutive_seqs(tmp_path: Path) -> None:
    """300 inserts and transitions from 30 tasks at once all land, with seqs 1..N and no gaps."""
    store = await Store.open(tmp_path / "agent.db")

    async def worker(w: int) -> None:
        for i in range(10):
            ex = await store.call(executions.insert_execution, scheduled(at=T0 + 1000 * w + i))
            assert ex is not None
            await store.call(executions.apply_event, ex.id, Event.START, now=T0)

    await asyncio.gather(*(worker(w) for w in range(30)))
    rows = await store.call(executions.changes_since, 0, 10_000)
    await store.close()
    assert len(rows) == 300
    assert all(r.status == "running" for r in rows)
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    assert rows[-1].seq == 600


async def test_cancelled_caller_does_not_cancel_the_write(tmp_path: Path) -> None:
    """A call whose awaiting task is cancelled still commits."""
    store = await Store.open(tmp_path / "agent.db")
    blocker = asyncio.ensure_future(store.call(lambda db: db.execute("SELECT 1")))
    task = asyncio.ensure_future(store.call(executions.insert_execution, scheduled()))
    await asyncio.sleep(0)
    task.cancel()
    await blocker
    deadline = asyncio.get_running_loop().time() + 10
    while not await store.call(executions.query_executions):
        assert asyncio.get_running_loop().time() < deadline, "the insert never landed"
        await asyncio.sleep(0.01)
    await store.close()
    assert task.cancelled()
