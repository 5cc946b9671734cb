"""The scheduler's turn with time passed in: real store, real supervisor, clocks we move.

Each test builds the scheduler with ``wall`` and ``monotonic`` functions it
controls and calls ``turn()`` directly, so "five hours later" takes no time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd.executor import Executor
from agentd.scheduler import Scheduler
from agentd.store import Store, meta
from agentd.store import executions as ex_sql
from agentd.store import jobs as jobs_sql
from agentd.supervisor import SupervisorClient
from shared.enums import ExecutionStatus as S
from shared.models import Execution, Job, JobRecord
from tests.agentd.supkit import running_supervisor

# A minute boundary plus 30 s, in 2030: far from now, so nothing collides with real ticks.
# Each test uses its own job name: tick ids (job, time) must not repeat across tests
# that share the supervisor, which never runs an id twice.
BASE = 1_899_999_960.0 + 30.0


@pytest.fixture(scope="module")
def sup_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from running_supervisor(tmp_path_factory.mktemp("sched-sup"))


class Clock:
    def __init__(self) -> None:
        self.wall, self.mono = BASE, 1000.0

    def advance(self, seconds: float, *, wall_step: float = 0.0) -> None:
        """Real time passes (both clocks); ``wall_step`` moves the wall clock alone."""
        self.wall += seconds + wall_step
        self.mono += seconds


class World:
    def __init__(self, store: Store, sup: SupervisorClient, data: Path) -> None:
        self.store = store
        self.clock = Clock()
        self.jobs: dict[str, JobRecord] = {}
        self.executor = Executor(
            store=store,
            supervisor=sup,
            data_dir=data,
            server="test",
            get_job=self.jobs.get,
            arm=lambda exec_id, due: None,
            min_free_bytes=0,
            wall=lambda: self.clock.wall,
        )
        self.scheduler = Scheduler(
            store=store,
            executor=self.executor,
            jobs=lambda: self.jobs,
            default_tz="UTC",
            wall=lambda: self.clock.wall,
            monotonic=lambda: self.clock.mono,
        )

    async def put(self, job: Job) -> None:
        self.jobs[job.name] = await self.store.call(
            jobs_sql.put_job, job, source="console", now=time.time()
        )
        self.scheduler.jobs_changed()

    async def rows(self, job: str) -> list[Execution]:
        found = await self.store.call(ex_sql.query_executions, job=job, limit=10_000)
        return sorted(found, key=lambda r: r.scheduled_for or 0)


@pytest.fixture
async def world(tmp_path: Path, sup_dir: Path):
    store = await Store.open(tmp_path / "agentd.db")
    sup = await SupervisorClient.connect(sup_dir)
    w = World(store, sup, sup_dir)
    yield w
    await w.executor.close(5.0)
    await sup.close()
    await store.close()


def _minutely(name: str, **fields: object) -> Job:
    return Job(name=name, command="true", cron="* * * * *", **fields)  # type: ignore[arg-type]


async def test_new_job_fires_no_backlog(world: World) -> None:
    """A job seen for the first time fires nothing from the past and is due at its next tick."""
    await world.put(_minutely("m1"))
    await world.scheduler.turn()
    assert await world.rows("m1") == []
    assert world.scheduler.next_due("m1") == BASE + 30  # the next minute boundary


async def test_due_tick_fires_once(world: World) -> None:
    """The tick that comes due is fired once, with its deterministic id, even if turns repeat."""
    await world.put(_minutely("m2"))
    await world.scheduler.turn()
    world.clock.advance(30.002)  # woke 2 ms late
    await world.scheduler.turn()
    await world.scheduler.turn()
    rows = await world.rows("m2")
    assert [r.scheduled_for for r in rows] == [BASE + 30]


async def test_downtime_is_planned_per_misfire_policy(world: World) -> None:
    """After 3 minutes with no turn, run_all within grace fires every missed tick."""
    await world.put(_minutely("m3", misfire="run_all", misfire_grace_s=3600.0))
    await world.scheduler.turn()
    world.clock.advance(180)
    await world.scheduler.turn()
    rows = await world.rows("m3")
    assert [r.scheduled_for for r in rows] == [BASE + 30, BASE + 90, BASE + 150]
    assert all(r.status is not S.SKIPPED for r in rows)


async def test_wall_clock_step_fires_no_backlog(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """A wall clock stepped 5 h forward (monotonic: 1 s) is a correction: no backlog, a warning."""
    await world.put(_minutely("m4", misfire="run_all", misfire_grace_s=86400.0))
    await world.scheduler.turn()
    with caplog.at_level(logging.WARNING, logger="agentd.scheduler"):
        world.clock.advance(1, wall_step=5 * 3600)
        await world.scheduler.turn()
    assert len(await world.rows("m4")) <= 1  # at most the one tick that is due right now
    assert "wall clock stepped" in caplog.text


async def test_removed_job_forgets_its_cursor(world: World) -> None:
    """A job removed from the table loses its stored cursor: if it returns, no backlog."""
    await world.put(_minutely("m5"))
    await world.scheduler.turn()
    assert await world.store.call(meta.get, "sched:m5") is not None
    del world.jobs["m5"]
    world.scheduler.jobs_changed()
    await world.scheduler.turn()
    assert await world.store.call(meta.get, "sched:m5") is None
    assert world.scheduler.next_due("m5") is None
