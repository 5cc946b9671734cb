"""History sync into the console's mirror survives kill -9 on either side: every row once.

Real agents (subprocesses), the real ``squ`` console (a subprocess where it is
killed, the ``Fleet`` in process where its links are watched).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.config import load_inventory
from console.fleet.fleet import Fleet
from console.fleet.link import Backoff
from console.fleet.mirror import Mirror, RunFilter
from console.fleet.source import LinkState
from console.keys import load_operator_key
from shared.enums import ExecutionStatus, Trigger
from shared.ids import new_execution_id
from shared.models import Execution
from tests.e2e.agentkit import AgentProc, wait_for
from tests.e2e.conftest import _skip_if_missing
from tests.e2e.wirekit import Wire

ROWS = 3000


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Wire]:
    _skip_if_missing()
    kit = Wire(tmp_path)
    try:
        yield kit
    finally:
        kit.cleanup()


def seed_history(data_dir: Path, count: int) -> None:
    """``count`` finished executions in the agent's store, as if it had run for a while."""
    from agentd.store import Store
    from agentd.store import executions as ex_sql

    async def fill() -> None:
        import random

        rng = random.Random(7)
        store = await Store.open(data_dir / "agentd.db", synchronous="NORMAL")
        try:
            now = time.time() - 3600
            rows = []
            for i in range(count):
                exec_id = new_execution_id(now=now + i * 0.01, rng=rng)
                rows.append(
                    Execution(
                        id=exec_id,
                        job="old",
                        server="db1",
                        run_id=exec_id,
                        trigger=Trigger.MANUAL,
                        status=ExecutionStatus.SUCCESS,
                        created_at=now + i * 0.01,
                        finished_at=now + i * 0.01 + 0.005,
                        exit_code=0,
                        stdout_tail=f"row {i}\n",
                    )
                )
            await store.call(ex_sql.insert_executions, rows)
        finally:
            await store.close()

    asyncio.run(fill())


def mirror_cursor(path: Path, agent: str) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT seq FROM cursors WHERE agent = ?", [agent]).fetchone()
    except sqlite3.OperationalError:
        return 0  # the schema is being created
    finally:
        conn.close()
    return int(row[0]) if row else 0


def mirrored(path: Path, agent: str) -> dict[str, int]:
    """Execution id -> seq as the mirror holds them for ``agent``."""
    mirror = Mirror.open(path)
    try:
        runs = mirror.page_runs(RunFilter(agent=agent), None, 1_000_000)
    finally:
        mirror.close()
    return {r.execution.id: r.execution.seq for r in runs}


def on_agent(proc: AgentProc) -> dict[str, int]:
    return {e.id: e.seq for e in proc.executions()}


def test_kill_9_of_the_console_mid_sync_loses_and_repeats_nothing(wire: Wire) -> None:
    """A console killed in the middle of a sync resumes by cursor: every row once after."""
    proc = AgentProc(wire.tmp / "db1")
    seed_history(proc.data_dir, ROWS)
    wire.agent("db1")
    mirror_file = wire.config / "mirror.db"
    console = wire.popen("history", "--batch", "25", "-n", "1")
    try:
        wait_for(
            lambda: mirror_cursor(mirror_file, "db1") > 0,
            what="the sync to start",
            timeout_s=30,
            every_s=0.005,
        )
        os.kill(console.pid, signal.SIGKILL)
        console.wait(timeout=10)
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
    assert console.returncode == -signal.SIGKILL
    cut = mirror_cursor(mirror_file, "db1")
    assert 0 < cut < ROWS, "killed after the sync had finished: nothing was interrupted"
    again = wire.squ("history", "-n", "1")
    assert again.returncode == 0, again.stderr
    assert mirrored(mirror_file, "db1") == on_agent(wire.agents["db1"])
    assert len(mirrored(mirror_file, "db1")) == ROWS


async def test_kill_9_of_the_agent_mid_run_then_every_row_once(wire: Wire) -> None:
    """The agent killed while a job runs: the link reconnects, the run ends, rows match."""
    proc = wire.agent("db1")
    proc.write_jobs("nap.toml", '[job.nap]\ncommand = "sleep 3; echo woke"\n')
    proc.hup()
    inventory = load_inventory(wire.config)
    key = load_operator_key(inventory, wire.config)
    mirror = Mirror.open(wire.config / "mirror.db")
    fleet = Fleet(inventory, key=key, mirror=mirror, backoff=Backoff(initial_s=0.2, max_s=1.0))
    posted: list[object] = []
    runner = asyncio.create_task(fleet.run(posted.append))
    try:
        link = fleet.link("db1")
        await link.wait_up(30)
        await wait_until(lambda: bool(mirror.jobs(name="nap")), "the job in the mirror")
        exec_id = await fleet.trigger("nap", "db1", {})
        await wait_until(
            lambda: status_of(mirror, exec_id) == ExecutionStatus.RUNNING, "the run mirrored"
        )
        proc.kill9()
        await wait_until(lambda: link.state.link is not LinkState.UP, "the link to drop")
        proc.start()
        await wait_until(lambda: link.is_up, "the link to come back", timeout_s=40)
        await wait_until(
            lambda: status_of(mirror, exec_id) == ExecutionStatus.SUCCESS,
            "the re-adopted run to finish in the mirror",
            timeout_s=40,
        )
        # Every row once, each at the agent's latest version.
        await wait_until(lambda: mirrored_of(mirror) == on_agent(proc), "the mirror to match")
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        mirror.close()
    assert (await asyncio.to_thread(proc.executions, "nap"))[0].stdout_tail == "woke\n"


def test_a_recreated_agent_database_is_a_new_epoch_resynced_from_zero(wire: Wire) -> None:
    """A new epoch resets the cursor: the new database's rows are synced, the epoch recorded."""
    proc = wire.agent("db1")
    proc.write_jobs("tick.toml", '[job.tick]\ncommand = "true"\n')
    proc.hup()
    wait_for(lambda: "tick" in wire.squ("jobs").stdout, what="the job loaded", timeout_s=30)
    assert wire.squ("run", "tick", "--wait", "--quiet").returncode == 0
    assert wire.squ("history", "-n", "1").returncode == 0
    proc.stop()
    for path in proc.data_dir.glob("agentd.db*"):
        path.unlink()
    proc.start()
    assert wire.squ("run", "tick", "--wait", "--quiet").returncode == 0
    assert wire.squ("history", "-n", "1").returncode == 0
    mirror = Mirror.open(wire.config / "mirror.db")
    try:
        assert len(mirror.epochs("db1")) == 2
        cursor = mirror.cursor("db1")
        assert cursor is not None and cursor.epoch == mirror.epochs("db1")[-1]
        new_ids = set(on_agent(proc))
        assert new_ids <= set(mirrored_of(mirror))
    finally:
        mirror.close()


def status_of(mirror: Mirror, exec_id: str) -> str | None:
    run = mirror.get_run("db1", exec_id)
    return run.execution.status if run is not None else None


def mirrored_of(mirror: Mirror) -> dict[str, int]:
    runs = mirror.page_runs(RunFilter(agent="db1"), None, 100_000)
    return {r.execution.id: r.execution.seq for r in runs}


async def wait_until(cond: object, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)
