"""Commit ahead (issue 8): a tick's row is committed before its tick, the spawn waits for it.

The wall clock is ours (``tests.agentd.test_scheduler.World``); the delay before the
spawn is a real loop timer, so "not before its tick" is checked on real elapsed time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.store import Store
from agentd.supervisor import SupervisorClient
from shared.enums import ExecutionStatus as S
from shared.models import Job
from tests.agentd.supkit import running_supervisor
from tests.agentd.test_scheduler import BASE, World


@pytest.fixture(scope="module")
def sup_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from running_supervisor(tmp_path_factory.mktemp("ahead-sup"))


@pytest.fixture
async def world(tmp_path: Path, sup_dir: Path):
    store = await Store.open(tmp_path / "agentd.db")
    sup = await SupervisorClient.connect(sup_dir)
    w = World(store, sup, sup_dir)
    yield w
    await w.executor.close(5.0)
    await sup.close()
    await store.close()


def _minutely(name: str) -> Job:
    return Job(name=name, command="true", cron="* * * * *")


async def _wait_started(world: World, job: str, deadline_s: float = 30.0) -> float:
    """Poll until ``job``'s one row is no longer queued; returns when (monotonic) it was seen."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        rows = await world.rows(job)
        if rows and rows[0].status is not S.QUEUED:
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job} did not start within {deadline_s} s")


async def test_row_committed_ahead_is_spawned_at_its_tick(world: World) -> None:
    """A tick 0.5 s ahead is committed queued at once and started no sooner than 0.5 s later."""
    await world.put(_minutely("ahead1"))
    await world.scheduler.turn()  # first sight of the job: next tick BASE + 30
    world.clock.advance(29.5)
    began = time.monotonic()
    await world.scheduler.turn(plan_until=BASE + 30.1)
    rows = await world.rows("ahead1")
    assert [(r.scheduled_for, r.status) for r in rows] == [(BASE + 30, S.QUEUED)]
    assert not world.executor.run_dir(rows[0].id).exists()  # not handed to the supervisor
    started = await _wait_started(world, "ahead1")
    assert started - began >= 0.5
    assert (await world.rows("ahead1"))[0].status is S.RUNNING


async def test_new_job_tick_inside_the_window_is_not_backlog(world: World) -> None:
    """A job first seen just before its tick still fires that tick (planned from the real now)."""
    world.clock.advance(29.9)
    await world.put(_minutely("ahead2"))
    await world.scheduler.turn(plan_until=BASE + 30.2)
    assert await world.rows("ahead2") == []
    assert world.scheduler.next_due("ahead2") == BASE + 30
    await world.scheduler.turn(plan_until=BASE + 30.2)
    rows = await world.rows("ahead2")
    assert [r.scheduled_for for r in rows] == [BASE + 30]


async def test_tick_beyond_the_window_is_not_committed(world: World) -> None:
    """Only ticks due by plan_until are committed ahead; a later one waits for its turn."""
    await world.put(_minutely("ahead3"))
    await world.scheduler.turn()
    world.clock.advance(29.0)
    await world.scheduler.turn(plan_until=BASE + 29.5)
    assert await world.rows("ahead3") == []
