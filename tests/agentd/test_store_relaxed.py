"""Relaxed commits (issue 8): a group of ``@relaxed`` calls commits without its own fsync.

The level is read inside each call (``PRAGMA synchronous``: 2 = FULL, 1 = NORMAL), so
the tests see what the commit of that call's group used.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import sqlite_utils

from agentd.store import Store, executions, open_readonly
from agentd.store.writer import relaxed
from shared.enums import ExecutionStatus
from tests.agentd.storekit import T0, scheduled
from tests.agentd.test_store_group import _queued

FULL, NORMAL = 2, 1


def _level(db: sqlite_utils.Database) -> int:
    return int(db.conn.execute("PRAGMA synchronous").fetchone()[0])


@relaxed
def _relaxed_level(db: sqlite_utils.Database) -> int:
    return _level(db)


async def test_relaxed_call_commits_at_normal_then_full_again(tmp_path: Path) -> None:
    """A relaxed call alone runs at NORMAL; the next ordinary call is back at FULL."""
    store = await Store.open(tmp_path / "agent.db")
    try:
        assert await store.call(_relaxed_level) == NORMAL
        assert await store.call(_level) == FULL
    finally:
        await store.close()


async def test_group_of_relaxed_calls_commits_at_normal(tmp_path: Path) -> None:
    """Relaxed calls queued together share one transaction committed at NORMAL."""
    store = await Store.open(tmp_path / "agent.db")
    try:
        out = await _queued(store, (_relaxed_level,), (_relaxed_level,))
    finally:
        await store.close()
    assert out == [NORMAL, NORMAL]


async def test_mixed_group_keeps_full(tmp_path: Path) -> None:
    """One ordinary call in a group makes the whole group commit at FULL."""
    store = await Store.open(tmp_path / "agent.db")
    try:
        out = await _queued(store, (_relaxed_level,), (_level,))
    finally:
        await store.close()
    assert out == [FULL, FULL]


async def test_store_opened_at_normal_stays_normal(tmp_path: Path) -> None:
    """A store opened with synchronous=NORMAL is never raised to FULL by a relaxed call."""
    store = await Store.open(tmp_path / "agent.db", synchronous="NORMAL")
    try:
        assert await store.call(_relaxed_level) == NORMAL
        assert await store.call(_level) == NORMAL
    finally:
        await store.close()


def test_record_start_survives_a_crash_of_the_agent(tmp_path: Path) -> None:
    """A start recorded without fsync is still there after the process dies without closing."""
    path = tmp_path / "agent.db"
    ex = scheduled("crashy", T0)
    script = textwrap.dedent(
        f"""
        import asyncio, os
        from agentd.store import Store, executions
        from tests.agentd.storekit import T0, scheduled

        async def main():
            store = await Store.open({str(path)!r})
            await store.call(executions.insert_execution, scheduled("crashy", T0))
            await store.call(executions.record_start, {ex.id!r}, now=T0 + 1, pid=4242)
            os._exit(0)  # no close, no checkpoint: what a kill -9 leaves

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[2], timeout=60, check=False
    )
    assert done.returncode == 0
    db = open_readonly(path)
    try:
        row = executions.get_execution(db, ex.id)
    finally:
        db.close()
    assert (row.status, row.pid, row.started_at) == (ExecutionStatus.RUNNING, 4242, T0 + 1)
