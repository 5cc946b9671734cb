"""Storage floor: raw ``sqlite3`` inserts of execution-shaped rows, batched.

The rows have the shape history sync carries (id, job, server, status, times,
exit code, tails, seq), so the sync benchmark's ratio compares like with like.
WAL and ``synchronous=NORMAL``, 1,000 rows per transaction, as a careful
hand-written importer would do it.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA", "batched_insert_rate", "sample_rows"]

SCHEMA = """
CREATE TABLE executions (
    agent TEXT NOT NULL, id TEXT NOT NULL, job TEXT NOT NULL, run_id TEXT NOT NULL,
    trigger TEXT NOT NULL, scheduled_for TEXT, status TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, duration_ms INTEGER, exit_code INTEGER,
    stdout_tail TEXT, stderr_tail TEXT, retry_index INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (agent, id)
)
"""


def sample_rows(count: int, *, agent: str = "db1") -> list[tuple[Any, ...]]:
    """``count`` small execution rows (ids sortable, distinct)."""
    return [
        (
            agent,
            f"01JEXEC{i:019d}",
            f"job-{i % 100}",
            f"01JRUN{i:020d}",
            "schedule",
            "2026-11-27T18:00:00+00:00",
            "success",
            "2026-11-27T18:00:00.010+00:00",
            "2026-11-27T18:00:00.020+00:00",
            10,
            0,
            "ok\n",
            "",
            0,
            i + 1,
        )
        for i in range(count)
    ]


def batched_insert_rate(work: Path, count: int, *, batch: int = 1000) -> float:
    """Rows per second inserted into a fresh WAL database, ``batch`` per transaction."""
    rows = sample_rows(count)
    path = work / "raw-sqlite.db"
    path.unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(SCHEMA)
        marks = ",".join("?" * len(rows[0]))
        started = time.perf_counter()
        for i in range(0, count, batch):
            db.execute("BEGIN")
            db.executemany(f"INSERT INTO executions VALUES ({marks})", rows[i : i + batch])
            db.execute("COMMIT")
        return count / (time.perf_counter() - started)
    finally:
        db.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
