"""agentd/audit: the audit table on a real SQLite file, append-only, and verify after tampering."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentd import audit
from agentd.store import Store
from tests.agentd.storekit import T0, open_store

COLUMNS = ("at", "actor", "origin", "action", "target", "before_hash", "after_hash", "detail")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    yield from open_store(tmp_path / "agent.db")


def fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.call_sync(
            audit.append,
            at=T0 + i,
            actor="alice",
            origin="wire 127.0.0.1:4000",
            action="job.put",
            target=f"job{i}",
            before_hash="",
            after_hash=f"{i:064x}",
            detail={"version": i + 1},
        )


def tamper(path: Path, sql: str, args: list[object]) -> None:
    """Change the file as an attacker with write access would: triggers dropped first."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER IF EXISTS audit_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_no_delete")
        conn.execute(sql, args)
    conn.close()


def verify_file(path: Path) -> audit.ChainReport:
    conn = sqlite3.connect(path)
    try:
        import sqlite_utils

        return audit.verify(sqlite_utils.Database(conn))
    finally:
        conn.close()


def test_appended_entries_verify(store: Store) -> None:
    """Entries appended through the store form a chain that verifies against its head."""
    fill(store)
    report = store.call_sync(audit.verify)
    assert (report.ok, report.checked) == (True, 5)
    assert store.call_sync(audit.head).seq == 5


def test_update_is_refused_by_sqlite(store: Store) -> None:
    """The table refuses UPDATE: the log is append-only even for the agent's own code."""
    fill(store, 1)

    def edit(db: object) -> None:
        db.execute("UPDATE audit SET actor = 'mallory'")  # type: ignore[attr-defined]

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.call_sync(edit)


def test_delete_is_refused_by_sqlite(store: Store) -> None:
    """The table refuses DELETE."""
    fill(store, 1)

    def drop(db: object) -> None:
        db.execute("DELETE FROM audit")  # type: ignore[attr-defined]

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.call_sync(drop)


def test_since_pages_in_order_with_filters(store: Store) -> None:
    """entries_since returns entries after the cursor, in order, filtered by target."""
    fill(store)
    assert [e.seq for e in store.call_sync(audit.entries_since, 2, 2)] == [3, 4]
    assert [e.target for e in store.call_sync(audit.entries_since, 0, 10, target="job1")] == [
        "job1"
    ]


@pytest.mark.parametrize("column", COLUMNS)
def test_changed_column_is_found(tmp_path: Path, column: str) -> None:
    """Changing any column of one stored entry is found by verify, naming that entry."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s)
    s.close_sync()
    if column == "at":
        tamper(path, "UPDATE audit SET at = at + 0.001 WHERE seq = 3", [])
    elif column == "detail":
        # Same meaning, other bytes: still found (the stored form must be canonical).
        tamper(path, 'UPDATE audit SET detail = \'{"version":  "3"}\' WHERE seq = 3', [])
    else:
        tamper(path, f"UPDATE audit SET {column} = {column} || 'x' WHERE seq = 3", [])
    report = verify_file(path)
    assert (report.ok, report.bad_seq) == (False, 3), report


def test_dropped_row_is_found(tmp_path: Path) -> None:
    """Deleting a row from the middle is found and the missing seq named."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s)
    s.close_sync()
    tamper(path, "DELETE FROM audit WHERE seq = 2", [])
    report = verify_file(path)
    assert (report.ok, report.bad_seq) == (False, 2)
    assert "missing" in report.why


def test_dropped_last_row_is_found(tmp_path: Path) -> None:
    """Deleting the newest row is found through the head."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s)
    s.close_sync()
    tamper(path, "DELETE FROM audit WHERE seq = 5", [])
    report = verify_file(path)
    assert (report.ok, report.bad_seq) == (False, 5)


def test_swapped_rows_are_found(tmp_path: Path) -> None:
    """Renumbering two rows (a reorder) is found."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s)
    s.close_sync()
    tamper(path, "UPDATE audit SET seq = -2 WHERE seq = 2", [])
    tamper(path, "UPDATE audit SET seq = 2 WHERE seq = 3", [])
    tamper(path, "UPDATE audit SET seq = 3 WHERE seq = -2", [])
    report = verify_file(path)
    assert (report.ok, report.bad_seq) == (False, 2)


def test_mangled_type_is_reported_not_raised(tmp_path: Path) -> None:
    """A row whose values cannot be read back is reported as edited, never a traceback."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s)
    s.close_sync()
    tamper(path, "UPDATE audit SET detail = 'not json' WHERE seq = 4", [])
    report = verify_file(path)
    assert (report.ok, report.bad_seq) == (False, 4)


def test_any_byte_of_an_entry_in_the_file_is_found(tmp_path: Path) -> None:
    """Flipping any one byte of an entry's stored hash text in the file itself is found."""
    path = tmp_path / "agent.db"
    s = Store.open_sync(path, synchronous="NORMAL")
    fill(s, 3)
    target = s.call_sync(audit.entries_since, 1, 1)[0]
    s.close_sync()
    raw = bytearray(path.read_bytes())
    needle = target.target.encode() + target.before_hash.encode() + target.after_hash.encode()
    at = raw.find(needle)
    assert at >= 0, "the entry's bytes are in the main file after close (WAL checkpointed)"
    for offset in range(len(needle)):
        copy = bytearray(raw)
        copy[at + offset] ^= 0x01
        path.write_bytes(bytes(copy))
        report = verify_file(path)
        assert not report.ok and report.bad_seq == 2, (offset, report)
    path.write_bytes(bytes(raw))
    assert verify_file(path).ok
