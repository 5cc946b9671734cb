"""RunList pages through a large mirror: keyset forward and back, offset jumps, bounded cache."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot

from console.fleet.mirror import Mirror, RunFilter
from console.widgets.run_list import MAX_CACHED, RunList
from shared.enums import ExecutionStatus, Trigger
from shared.ids import scheduled_execution_id
from shared.models import Execution

ROWS = 5_000
T0 = 1_800_000_000.0


class Host(App[None]):
    def __init__(self, mirror: Mirror) -> None:
        super().__init__()
        self.mirror = mirror

    def compose(self) -> ComposeResult:
        yield RunList(self.mirror, tz=UTC, filters=RunFilter())


@pytest.fixture
def mirror(tmp_path: Path) -> Mirror:
    m = Mirror.open(tmp_path / "m.db")
    rows = []
    for i in range(ROWS):
        at = T0 + i
        ex_id = scheduled_execution_id("job", at)
        rows.append(
            Execution(
                id=ex_id, job="job", server="a1", run_id=ex_id, trigger=Trigger.SCHEDULE,
                status=ExecutionStatus.SUCCESS, seq=i + 1, scheduled_for=at, created_at=at,
            )
        )  # fmt: skip
    m.upsert_executions("a1", "E", rows, next_seq=ROWS)
    yield m
    m.close()


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)


def when(run_list: RunList, index: int) -> float:
    run = run_list.row(index)
    assert run is not None and run.execution.scheduled_for is not None
    return run.execution.scheduled_for


async def test_end_jumps_to_the_oldest_run(mirror: Mirror) -> None:
    """End moves the cursor to the last (oldest) run, fetched by one offset query."""
    app = Host(mirror)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = app.query_one(RunList)
        run_list.focus()
        await until(pilot, lambda: run_list.total == ROWS)
        await pilot.press("end")
        await until(pilot, lambda: run_list.cursor == ROWS - 1)
        assert when(run_list, ROWS - 1) == T0


async def test_scrolling_up_from_a_jump_uses_the_next_newer_rows(mirror: Mirror) -> None:
    """After a jump, rows above come from keyset paging and stay in order."""
    app = Host(mirror)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = app.query_one(RunList)
        run_list.focus()
        await pilot.press("end")
        await until(pilot, lambda: run_list.cursor == ROWS - 1)
        for _ in range(3):
            await pilot.press("pageup")
        times = [when(run_list, i) for i in range(run_list.cursor, ROWS)]
        assert times == sorted(times, reverse=True)
        assert times == [T0 + ROWS - 1 - i for i in range(run_list.cursor, ROWS)]


def test_cache_stays_bounded(mirror: Mirror) -> None:
    """Walking every row keeps at most a few pages in memory."""
    run_list = RunList(mirror, tz=UTC)
    run_list.total = mirror.count_runs(RunFilter())
    for index in range(ROWS):
        assert when(run_list, index) == T0 + ROWS - 1 - index
        assert len(run_list._rows) <= MAX_CACHED


async def test_filtered_count_arrives_from_a_worker(mirror: Mirror) -> None:
    """A filter matching more than a page shows a page at once, then the exact count."""
    app = Host(mirror)
    async with app.run_test(size=(100, 30)) as pilot:
        run_list = app.query_one(RunList)
        run_list.set_filters(RunFilter(job="job"))
        assert run_list.total in (200, ROWS)  # the first page, or already the count
        await until(pilot, lambda: run_list.total == ROWS)
