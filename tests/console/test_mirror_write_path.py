"""The mirror's sync write path after issue 8: the same stored rows, one index fewer."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from console.fleet.mirror import EXEC_COLUMNS, Mirror, RunFilter
from shared.enums import ExecutionStatus, Trigger
from shared.models import Execution

T0 = 1_800_000_000.0


def execution(n: int, **fields: object) -> Execution:
    values: dict[str, object] = {
        "id": f"01K{n:023d}",
        "job": "backup",
        "server": "db1",
        "run_id": f"01K{n:023d}",
        "trigger": Trigger.MANUAL,
        "status": ExecutionStatus.SUCCESS,
        "seq": n,
        "created_at": T0 + n,
    }
    values.update(fields)
    return msgspec.convert(values, Execution)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    m = Mirror.open(tmp_path / "mirror.db")
    yield m
    m.close()


def stored(mirror: Mirror) -> list[tuple[object, ...]]:
    columns = ", ".join(("agent", "epoch", *EXEC_COLUMNS))
    return mirror.db.execute(f"SELECT {columns} FROM executions ORDER BY id").fetchall()


def test_stored_columns_are_the_fields_in_order(mirror: Mirror) -> None:
    """Each column holds its field's value; params is json.dumps text, '{}' when empty."""
    full = execution(
        1,
        started_at=T0,
        finished_at=T0 + 2,
        duration_ms=2000,
        exit_code=0,
        pid=7,
        stdout_tail="ok ✓\n",
        triggered_by="alice",
        params={"zone": "eu", "db": "main"},
        reason="",
    )
    empty = execution(2)
    mirror.upsert_executions("db1", "E1", [full, empty], next_seq=2)
    expected = [
        (
            "db1",
            "E1",
            *(
                json.dumps(getattr(ex, name)) if name == "params" else getattr(ex, name)
                for name in EXEC_COLUMNS
            ),
        )
        for ex in (full, empty)
    ]
    assert stored(mirror) == expected
    assert stored(mirror)[0][2 + EXEC_COLUMNS.index("params")] == '{"zone": "eu", "db": "main"}'
    assert stored(mirror)[1][2 + EXEC_COLUMNS.index("params")] == "{}"


def test_rows_read_back_equal_what_was_synced(mirror: Mirror) -> None:
    """page_runs returns the synced records unchanged, params included."""
    rows = [execution(n, params={"n": str(n)} if n % 2 else {}) for n in range(1, 6)]
    mirror.upsert_executions("db1", "E1", rows, next_seq=5)
    got = [r.execution for r in mirror.page_runs(RunFilter(), None, 10)]
    assert sorted(got, key=lambda ex: ex.id) == rows


def test_duplicate_agent_index_is_dropped_from_an_old_mirror(tmp_path: Path) -> None:
    """A mirror made with ix_exec_agent loses it on open; the primary key's index serves instead."""
    path = tmp_path / "old.db"
    Mirror.open(path).close()
    with sqlite3.connect(path) as old:
        old.execute("CREATE INDEX ix_exec_agent ON executions(agent, id)")
    mirror = Mirror.open(path)
    try:
        names = {r[0] for r in mirror.db.execute("SELECT name FROM sqlite_master")}
        plan = mirror.db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM executions WHERE agent = ? "
            "ORDER BY id DESC, agent DESC LIMIT 50",
            ["db1"],
        ).fetchall()
    finally:
        mirror.close()
    assert "ix_exec_agent" not in names
    assert "USING COVERING INDEX sqlite_autoindex_executions_1" in plan[0][3]
