"""Durability: a process killed with SIGKILL keeps every row whose insert had returned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from agentd.store import Store, executions, open_readonly

REPO = Path(__file__).resolve().parents[2]

# Inserts executions forever, printing each id once insert_execution has returned.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from agentd.store import Store, executions
    from tests.agentd.storekit import scheduled, T0

    async def main() -> None:
        store = await Store.open(Path(sys.argv[1]))
        print(store.epoch, flush=True)
        i = 0
        while True:
            ex = await store.call(executions.insert_execution, scheduled(at=T0 + 60 * i))
            print(ex.id, flush=True)
            i += 1
            if i == int(sys.argv[2]):
                await asyncio.sleep(3600)  # hold still, as if spawning the job

    asyncio.run(main())
    """
)


def _run_and_kill(path: Path, stop_after: int, lines: int) -> tuple[str, list[str]]:
    """Starts the child, reads its epoch and ``lines`` committed ids, SIGKILLs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(stop_after)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert child.stdout is not None
    try:
        epoch = child.stdout.readline().strip()
        ids = [child.stdout.readline().strip() for _ in range(lines)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return epoch, ids


def test_row_survives_sigkill_right_after_insert(tmp_path: Path) -> None:
    """An execution whose insert returned is there after the writer is killed with SIGKILL."""
    path = tmp_path / "agent.db"
    _epoch, [eid] = _run_and_kill(path, stop_after=1, lines=1)
    db = open_readonly(path)
    assert executions.get_execution(db, eid).id == eid
    db.close()


def test_no_row_lost_when_killed_mid_stream(tmp_path: Path) -> None:
    """Killed while inserting non-stop, every reported row is there and the file is sound."""
    path = tmp_path / "agent.db"
    _epoch, ids = _run_and_kill(path, stop_after=-1, lines=200)
    db = open_readonly(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = {e.id for e in executions.query_executions(db, limit=10_000)}
    db.close()
    assert set(ids) <= stored


def test_epoch_survives_sigkill(tmp_path: Path) -> None:
    """A writer killed with SIGKILL is not mistaken for a restore: the epoch stays."""
    path = tmp_path / "agent.db"
    epoch, _ids = _run_and_kill(path, stop_after=-1, lines=20)
    store = Store.open_sync(path)
    store.close_sync()
    assert store.epoch == epoch
