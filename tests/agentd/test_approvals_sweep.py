"""Issue 8: ``ApprovalDesk.run`` sweeps when woken and at each expiry, not on a 1 s tick.

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

from agentd import approvals
from agentd.approvals import ApprovalDesk
from agentd.store import Store
from agentd.store import executions as ex_sql
from agentd.store import jobs as job_sql
from shared import ids
from shared.approvals import ApprovalState
from shared.enums import Approval, Trigger
from shared.enums import ExecutionStatus as S
from shared.models import Execution, Job, JobRecord

JOB = Job(name="deploy", command="true", cron="0 3 * * *", approval=Approval.ALWAYS)


class CountingStore:
    """The real store, counting ``call``s (what an idle sweep would cost)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls = 0

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self.store.call(fn, *args, **kwargs)


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[tuple[ApprovalDesk, CountingStore, JobRecord]]:
    store = await Store.open(tmp_path / "agentd.db", synchronous="NORMAL")
    record = await store.call(job_sql.put_job, JOB, source="wire", now=time.time(), by="alice")
    counting = CountingStore(store)
    desk = ApprovalDesk(counting, agent_name="db1", operators=tuple)
    desk.on_change = desk.wake  # as the daemon wires it (through Agent._changed)
    task = asyncio.create_task(desk.run())
    try:
        yield desk, counting, record
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def wait_until(check: Any, what: str, timeout_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return found


async def test_request_is_expired_at_its_expiry(desk: Any) -> None:
    """A manual request expiring in 0.3 s has its run skipped well before the 10 s bound."""
    approvals_desk, counting, record = desk
    info = await approvals_desk.request(
        record, params={}, requester="alice", origin="test", expires_in_s=0.3
    )

    async def skipped() -> bool:
        ex = await counting.store.call(ex_sql.get_execution, info.intent.execution_id)
        return ex.status is S.SKIPPED

    await wait_until(skipped, "the expired request's run to be skipped")
    assert time.time() - info.intent.expires_at < approvals.SWEEP_MAX_SLEEP_S / 2


async def test_woken_sweep_gives_a_scheduled_run_its_request(desk: Any) -> None:
    """An awaiting scheduled row gets its request once the desk is woken."""
    approvals_desk, counting, _record = desk
    due = time.time()
    ex = Execution(
        id=ids.scheduled_execution_id(JOB.name, due),
        job=JOB.name,
        server="db1",
        run_id="r1",
        trigger=Trigger.SCHEDULE,
        status=S.AWAITING_APPROVAL,
        scheduled_for=due,
        created_at=due,
    )
    await counting.store.call(ex_sql.insert_execution, ex)
    approvals_desk.wake()

    async def pending() -> list[Any]:
        infos = await approvals_desk.list(ApprovalState.PENDING, 10)
        return [i for i in infos if i.intent.execution_id == ex.id]

    assert (await wait_until(pending, "a request for the scheduled run"))[0].intent.requester == (
        approvals.SCHEDULE_REQUESTER
    )


async def test_idle_desk_makes_no_store_calls(desk: Any) -> None:
    """With nothing pending, the desk does not touch the store between wakes (no 1 s tick)."""
    _approvals_desk, counting, _record = desk
    await wait_until(_async(lambda: counting.calls >= 3), "the first sweep")
    await asyncio.sleep(approvals.SWEEP_MIN_GAP_S)  # the first sweep's wake-up settles
    before = counting.calls
    # Asserting that nothing happens needs a window: longer than the old 1 s tick.
    await asyncio.sleep(1.5)
    assert counting.calls == before


def _async(check: Any) -> Any:
    async def run() -> Any:
        return check()

    return run
