"""Opening the store: migrations, WAL, epoch, bad files, closing, read-only readers."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest
import sqlite_utils

from agentd.store import Store, executions, meta, open_readonly
from agentd.store.errors import StoreClosed, StoreFull, StoreTooNew, StoreUnreadable
from agentd.store.schema import MIGRATIONS
from tests.agentd.storekit import scheduled


def test_open_creates_schema_from_empty(tmp_path: Path) -> None:
    """A new file gets every table and every migration recorded."""
    store = Store.open_sync(tmp_path / "agent.db")
    store.close_sync()
    db = sqlite_utils.Database(tmp_path / "agent.db")
    assert {"executions", "jobs", "meta", "seq_counter"} <= set(db.table_names())
    assert [m.name for m in MIGRATIONS.applied(db)] == [
        "0001_initial",
        "0002_alerts",
        "0003_approvals_audit",
    ]


def test_reopen_keeps_rows_and_applies_nothing_twice(tmp_path: Path) -> None:
    """Re-opening a migrated file keeps its rows and records no migration again."""
    path = tmp_path / "agent.db"
    store = Store.open_sync(path)
    store.call_sync(executions.insert_execution, scheduled())
    store.close_sync()
    store = Store.open_sync(path)
    assert len(store.call_sync(executions.query_executions)) == 1
    store.close_sync()
    assert len(MIGRATIONS.applied(sqlite_utils.Database(path))) == 3


def test_database_is_in_wal_mode_and_private(tmp_path: Path) -> None:
    """The file is in WAL mode and readable by its owner only."""
    path = tmp_path / "agent.db"
    Store.open_sync(path).close_sync()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_epoch_persists_across_reopen(tmp_path: Path) -> None:
    """The epoch minted at creation is the same after a restart."""
    path = tmp_path / "agent.db"
    first = Store.open_sync(path)
    first.close_sync()
    second = Store.open_sync(path)
    second.close_sync()
    assert len(first.epoch) == 32
    assert second.epoch == first.epoch


def test_new_database_gets_new_epoch(tmp_path: Path) -> None:
    """Two databases created separately have different epochs."""
    a = Store.open_sync(tmp_path / "a.db")
    b = Store.open_sync(tmp_path / "b.db")
    a.close_sync()
    b.close_sync()
    assert a.epoch != b.epoch


def test_database_from_newer_build_is_refused(tmp_path: Path) -> None:
    """A file with a migration this build does not know is refused, naming the migration."""
    path = tmp_path / "agent.db"
    Store.open_sync(path).close_sync()
    db = sqlite_utils.Database(path)
    db["_sqlite_migrations"].insert(
        {"migration_set": "squ-agentd", "name": "0099_future", "applied_at": "x"}
    )
    db.close()
    with pytest.raises(StoreTooNew, match="0099_future"):
        Store.open_sync(path)


def test_not_a_database_is_refused_with_its_path(tmp_path: Path) -> None:
    """A file that is not SQLite gives a StoreUnreadable naming the file."""
    path = tmp_path / "agent.db"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreUnreadable, match=r"agent\.db"):
        Store.open_sync(path)


def test_missing_directory_is_refused_with_its_path(tmp_path: Path) -> None:
    """A path in a directory that does not exist gives a StoreUnreadable, not a traceback."""
    with pytest.raises(StoreUnreadable, match="nowhere"):
        Store.open_sync(tmp_path / "nowhere" / "agent.db")


def test_call_after_close_raises_store_closed(tmp_path: Path) -> None:
    """Closing twice is harmless; a call after close raises StoreClosed."""
    store = Store.open_sync(tmp_path / "agent.db")
    store.close_sync()
    store.close_sync()
    with pytest.raises(StoreClosed):
        store.call_sync(executions.unfinished)


async def test_close_finishes_calls_already_made(tmp_path: Path) -> None:
    """Writes submitted before close are committed, not dropped."""
    path = tmp_path / "agent.db"
    store = await Store.open(path)
    pending = [
        asyncio.ensure_future(store.call(executions.insert_execution, scheduled(at=float(i))))
        for i in range(1, 21)
    ]
    await asyncio.sleep(0)  # let every call reach the store thread's queue
    await store.close()
    await asyncio.gather(*pending)
    db = open_readonly(path)
    assert db["executions"].count == 20
    db.close()


def test_function_leaving_a_transaction_open_is_rolled_back(tmp_path: Path) -> None:
    """A function that raises with a raw-connection write uncommitted leaves nothing behind."""

    def half_write(db: sqlite_utils.Database) -> None:
        # The raw connection opens an implicit transaction (db.execute would autocommit).
        db.conn.execute("INSERT INTO meta (key, value) VALUES ('half', '1')")
        raise RuntimeError("boom")

    store = Store.open_sync(tmp_path / "agent.db")
    with pytest.raises(RuntimeError):
        store.call_sync(half_write)
    assert store.call_sync(meta.get, "half") is None
    store.close_sync()


def test_full_disk_raises_store_full_and_keeps_old_rows(tmp_path: Path) -> None:
    """When the database cannot grow, the write raises StoreFull and earlier rows stay."""
    store = Store.open_sync(tmp_path / "agent.db")
    store.call_sync(executions.insert_execution, scheduled(at=1.0))
    pages = store.call_sync(lambda db: db.execute("PRAGMA page_count").fetchone()[0])
    store.call_sync(lambda db: db.execute(f"PRAGMA max_page_count = {pages}"))
    with pytest.raises(StoreFull, match="full"):
        for i in range(2, 2000):
            store.call_sync(
                executions.insert_execution, scheduled(at=float(i), stdout_tail="x" * 4000)
            )
    assert store.call_sync(executions.get_execution, scheduled(at=1.0).id).scheduled_for == 1.0
    store.close_sync()


def test_readonly_reader_sees_committed_rows_while_store_is_open(tmp_path: Path) -> None:
    """A CLI reader opened beside the running store sees what it committed."""
    path = tmp_path / "agent.db"
    store = Store.open_sync(path)
    store.call_sync(executions.insert_execution, scheduled())
    db = open_readonly(path)
    assert [e.job for e in executions.query_executions(db)] == ["backup"]
    db.close()
    store.close_sync()


def test_readonly_reader_cannot_write(tmp_path: Path) -> None:
    """The read-only connection refuses writes."""
    path = tmp_path / "agent.db"
    Store.open_sync(path).close_sync()
    db = open_readonly(path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        meta.set(db, "k", 1)
    db.close()


def test_readonly_on_missing_file_says_so(tmp_path: Path) -> None:
    """open_readonly on a missing file names it and hints at initialisation."""
    with pytest.raises(StoreUnreadable, match="initialised"):
        open_readonly(tmp_path / "agent.db")


def _backup(source: Path, target: Path) -> None:
    """A consistent copy of a live database, as a backup tool would take it."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_restored_backup_gets_a_new_epoch(tmp_path: Path) -> None:
    """A database restored from an older backup gets a new epoch, so consoles resync."""
    path = tmp_path / "agent.db"
    store = Store.open_sync(path)
    store.call_sync(executions.insert_execution, scheduled(at=1.0))
    _backup(path, tmp_path / "backup.db")
    store.call_sync(executions.insert_execution, scheduled(at=2.0))
    store.close_sync()
    for leftover in tmp_path.glob("agent.db-*"):
        leftover.unlink()
    (tmp_path / "backup.db").replace(path)
    restored = Store.open_sync(path)
    restored.close_sync()
    assert restored.epoch != store.epoch
    reopened = Store.open_sync(path)
    reopened.close_sync()
    assert reopened.epoch == restored.epoch


def test_missing_high_water_file_keeps_epoch(tmp_path: Path) -> None:
    """Without its high-water file the store keeps its epoch (nothing says it went back)."""
    path = tmp_path / "agent.db"
    first = Store.open_sync(path)
    first.close_sync()
    (tmp_path / "agent.db.highwater").unlink()
    second = Store.open_sync(path)
    second.close_sync()
    assert second.epoch == first.epoch


def test_loose_permissions_are_tightened_on_open(tmp_path: Path) -> None:
    """A database file readable by others (e.g. restored) is made owner-only at open."""
    path = tmp_path / "agent.db"
    Store.open_sync(path).close_sync()
    path.chmod(0o644)
    Store.open_sync(path).close_sync()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
