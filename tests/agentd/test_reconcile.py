"""Start-up reconciliation against a real store and a real supervisor: each row, each evidence."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd import reconcile
from agentd.executor import Executor
from agentd.store import Store, meta
from agentd.store import executions as ex_sql
from agentd.store import jobs as jobs_sql
from agentd.supervisor import SupervisorClient, current_boot_id
from shared.enums import ExecutionStatus as S
from shared.enums import Trigger
from shared.models import Execution, Job, JobRecord
from tests.agentd.supkit import running_supervisor


@pytest.fixture(scope="module")
def sup_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real supervisor shared by the module (each test uses its own store and ids)."""
    yield from running_supervisor(tmp_path_factory.mktemp("sup"))


class World:
    def __init__(self, store: Store, sup: SupervisorClient, data: Path) -> None:
        self.store, self.sup, self.data = store, sup, data
        self.jobs: dict[str, JobRecord] = {}
        self.armed: list[str] = []
        self.executor = Executor(
            store=store,
            supervisor=sup,
            data_dir=data,
            server="test",
            get_job=self.jobs.get,
            arm=lambda exec_id, due: self.armed.append(exec_id),
            min_free_bytes=0,
        )

    async def add_job(self, command: str) -> JobRecord:
        record = await self.store.call(
            jobs_sql.put_job, Job(name="j", command=command), source="console", now=time.time()
        )
        self.jobs["j"] = record
        return record

    async def row(self, exec_id: str, status: S, *, created_at: float | None = None) -> None:
        now = time.time()
        ex = Execution(
            id=exec_id,
            job="j",
            server="test",
            run_id=exec_id,
            trigger=Trigger.MANUAL,
            status=status,
            created_at=created_at or now,
            started_at=now if status is S.RUNNING else None,
        )
        await self.store.call(ex_sql.insert_execution, ex)

    async def get(self, exec_id: str) -> Execution:
        return await self.store.call(ex_sql.get_execution, exec_id)


@pytest.fixture
async def world(tmp_path: Path, sup_dir: Path):
    store = await Store.open(tmp_path / "agentd.db")
    sup = await SupervisorClient.connect(sup_dir)
    yield World(store, sup, sup_dir)
    await sup.close()
    await store.close()


def _id(tag: str) -> str:
    return f"T{os.getpid()}{tag}{time.monotonic_ns()}"


async def test_pending_row_is_armed_again(world: World) -> None:
    """A pending row (never handed to the supervisor) is armed to start again."""
    await world.add_job("true")
    exec_id = _id("p")
    await world.row(exec_id, S.PENDING)
    await reconcile.reconcile(world.store, world.sup, world.executor)
    assert world.armed == [exec_id]
    assert (await world.get(exec_id)).status is S.PENDING


async def test_running_row_after_reboot_is_lost(world: World) -> None:
    """A running row with no evidence, after the boot id changed, is lost: 'rebooted'."""
    await world.add_job("true")
    exec_id = _id("r")
    await world.row(exec_id, S.RUNNING)
    await world.store.call(meta.set, "boot_id", "an-earlier-boot")
    await reconcile.reconcile(world.store, world.sup, world.executor)
    row = await world.get(exec_id)
    assert row.status is S.LOST and "rebooted" in row.reason
    assert await world.store.call(meta.get, "boot_id") == current_boot_id()


async def test_running_row_without_evidence_is_lost(world: World) -> None:
    """A running row the supervisor does not know and that left no exit record is lost."""
    await world.add_job("true")
    exec_id = _id("n")
    await world.row(exec_id, S.RUNNING)
    await reconcile.reconcile(world.store, world.sup, world.executor)
    row = await world.get(exec_id)
    assert row.status is S.LOST and "without an exit record" in row.reason


async def test_queued_row_without_run_dir_is_started_once(world: World) -> None:
    """A queued row whose spawn never reached the supervisor is started (and only once)."""
    await world.add_job("exit 4")
    exec_id = _id("q")
    await world.row(exec_id, S.QUEUED)
    await reconcile.reconcile(world.store, world.sup, world.executor)
    assert (await world.get(exec_id)).status is S.RUNNING
    # Its exit arrives like any other.
    async for record in world.sup.exits():
        if record.exec_id == exec_id:
            done = await world.executor.finish(record)
            break
    assert done is not None and (done.status, done.exit_code) == (S.FAILED, 4)


async def test_queued_row_with_run_dir_but_no_record_is_lost(world: World) -> None:
    """A queued row whose run dir exists without any record may have run: lost, not re-run."""
    await world.add_job("true")
    exec_id = _id("d")
    await world.row(exec_id, S.QUEUED)
    world.executor.run_dir(exec_id).mkdir(parents=True)
    await reconcile.reconcile(world.store, world.sup, world.executor)
    row = await world.get(exec_id)
    assert row.status is S.LOST and "cannot run twice" in row.reason


async def test_stale_queued_row_is_skipped(world: World) -> None:
    """A queued row older than the job's misfire grace is skipped rather than started late."""
    await world.add_job("true")
    exec_id = _id("s")
    await world.row(exec_id, S.QUEUED, created_at=time.time() - 7200)
    await reconcile.reconcile(world.store, world.sup, world.executor)
    row = await world.get(exec_id)
    assert row.status is S.SKIPPED and "grace" in row.reason
