"""Group commit on the store thread: calls that queue up share one transaction, safely."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from agentd.store import Store, executions, meta, open_readonly
from agentd.store.errors import StoreFull
from shared.enums import ExecutionStatus
from tests.agentd.storekit import T0, manual, scheduled

DAY = 86_400.0


def _block(db: sqlite_utils.Database, started: threading.Event, go: threading.Event) -> None:
    started.set()
    go.wait(10)


def _in_transaction(db: sqlite_utils.Database) -> bool:
    return db.conn.in_transaction


def _fail(db: sqlite_utils.Database) -> None:
    meta.set(db, "from_failed_call", 1)
    raise ValueError("this call fails after writing")


async def _queued(store: Store, *calls: tuple[Any, ...]) -> list[Any]:
    """Holds the store thread, queues ``calls`` behind it, releases it; returns outcomes."""
    started, go = threading.Event(), threading.Event()
    blocker = asyncio.ensure_future(store.call(_block, started, go))
    deadline = asyncio.get_running_loop().time() + 10
    while not started.is_set():
        assert asyncio.get_running_loop().time() < deadline, "store thread never started"
        await asyncio.sleep(0.001)
    futures: list[Awaitable[Any]] = [
        asyncio.ensure_future(store.call(fn, *args)) for fn, *args in calls
    ]
    await asyncio.sleep(0)  # every call is now in the store's queue
    go.set()
    await blocker
    return await asyncio.gather(*futures, return_exceptions=True)


async def test_queued_calls_run_in_one_transaction(tmp_path: Path) -> None:
    """Calls queued together run inside one group transaction, in the order made."""
    store = await Store.open(tmp_path / "agent.db")
    out = await _queued(
        store,
        (_in_transaction,),
        (meta.set, "k", 1),
        (meta.get, "k"),
        (meta.set, "k", 2),
        (meta.get, "k"),
    )
    await store.close()
    assert out == [True, None, 1, None, 2]


async def test_failing_call_in_a_group_rolls_back_only_itself(tmp_path: Path) -> None:
    """One call raising inside a group undoes its own writes; its neighbours commit."""
    path = tmp_path / "agent.db"
    store = await Store.open(path)
    out = await _queued(
        store,
        (executions.insert_execution, scheduled(at=T0)),
        (_fail,),
        (executions.insert_execution, scheduled(at=T0 + 60)),
    )
    await store.close()
    assert isinstance(out[1], ValueError)
    db = open_readonly(path)
    assert db["executions"].count == 2
    assert meta.get(db, "from_failed_call") is None
    db.close()


async def test_solo_call_runs_outside_the_group_in_order(tmp_path: Path) -> None:
    """prune (solo) queued between writes runs alone, after the writes before it."""
    store = await Store.open(tmp_path / "agent.db")
    old = manual(at=T0, status=ExecutionStatus.CANCELLED)
    out = await _queued(
        store,
        (executions.insert_execution, old),
        (partial(executions.prune, older_than=T0 + DAY),),
        (executions.insert_execution, manual(at=T0 + 1, status=ExecutionStatus.CANCELLED)),
    )
    rest = await store.call(executions.query_executions)
    await store.close()
    assert out[1] == 1
    assert [e.created_at for e in rest] == [T0 + 1]


async def test_disk_full_in_a_group_reports_only_committed_calls_done(tmp_path: Path) -> None:
    """Disk full mid-group: every call reported done is on disk; the rest get StoreFull."""
    path = tmp_path / "agent.db"
    store = await Store.open(path)
    pages = await store.call(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
    await store.call(lambda db: db.execute(f"PRAGMA max_page_count = {pages + 4}"))
    ticks = [scheduled(at=T0 + i, stdout_tail="x" * 3000) for i in range(12)]
    out = await _queued(store, *((executions.insert_execution, t) for t in ticks))
    await store.close()
    done = {r.id for r in out if not isinstance(r, BaseException)}
    failed = [r for r in out if isinstance(r, BaseException)]
    assert failed, "the page limit was never reached"
    assert all(isinstance(f, StoreFull) for f in failed)
    db = open_readonly(path)
    assert {e.id for e in executions.query_executions(db)} == done
    db.close()


@pytest.mark.parametrize("n", [200])
async def test_concurrent_writers_all_commit_with_group_commit(tmp_path: Path, n: int) -> None:
    """n coroutines writing at once all get committed rows back, visible after reopen."""
    path = tmp_path / "agent.db"
    store = await Store.open(path)
    rows = await asyncio.gather(
        *(store.call(executions.insert_execution, scheduled(at=T0 + i)) for i in range(n))
    )
    await store.close()
    db = open_readonly(path)
    assert db["executions"].count == n == len({r.seq for r in rows if r})
    db.close()
