"""The store's schema as versioned migrations (sqlite-utils ``Migrations``).

Call ``migrate(db, path)`` once when the database is opened; it applies what is
pending, each migration in its own transaction with the record of it, and
refuses a database that a newer squ-agentd migrated. STYLE.md habit 9: a schema
change is a new migration appended here, never an edit of a shipped one.

Sequence numbers: one AUTOINCREMENT counter (``seq_counter``) feeds a ``seq``
column on every synced table (executions, jobs). ``next_seq(db)`` takes the
next value inside the caller's transaction, so a change and its seq commit or
roll back together, and AUTOINCREMENT guarantees a value is never handed out
twice, even after rows are deleted or the agent restarts.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlite_utils
from sqlite_utils.migrations import Migrations

from agentd.store.errors import StoreTooNew

__all__ = ["MIGRATIONS", "migrate", "next_seq", "unknown_migrations"]

_Fn = TypeVar("_Fn", bound=Callable[[sqlite_utils.Database], None])

MIGRATIONS = Migrations("squ-agentd")
# Names of the migrations this build knows, to recognise a database from a newer build.
_KNOWN: list[str] = []


def _migration(name: str) -> Callable[[_Fn], _Fn]:
    def register(fn: _Fn) -> _Fn:
        _KNOWN.append(name)
        return MIGRATIONS(name=name)(fn)

    return register


@_migration("0001_initial")
def _m0001_initial(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE seq_counter (seq INTEGER PRIMARY KEY AUTOINCREMENT)")
    db.execute(
        """
        CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            job TEXT NOT NULL,
            server TEXT NOT NULL,
            run_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            seq INTEGER NOT NULL,
            scheduled_for REAL,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            duration_ms INTEGER,
            exit_code INTEGER,
            signal INTEGER,
            retry_index INTEGER NOT NULL DEFAULT 0,
            pid INTEGER,
            stdout_tail TEXT NOT NULL DEFAULT '',
            stderr_tail TEXT NOT NULL DEFAULT '',
            log_bytes INTEGER NOT NULL DEFAULT 0,
            log_dropped_bytes INTEGER NOT NULL DEFAULT 0,
            cpu_time_s REAL,
            peak_rss_kb INTEGER,
            triggered_by TEXT NOT NULL DEFAULT '',
            approved_by TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            reason TEXT NOT NULL DEFAULT ''
        )
        """
    )
    # DESIGN.md: a scheduled execution's identity is (job, scheduled_for) and is unique,
    # so a restart can never fire the same tick twice. Retries share scheduled_for but
    # have trigger 'retry', hence the partial index.
    db.execute(
        "CREATE UNIQUE INDEX executions_tick ON executions (job, scheduled_for) "
        "WHERE trigger = 'schedule'"
    )
    db.execute("CREATE UNIQUE INDEX executions_seq ON executions (seq)")
    db.execute("CREATE INDEX executions_job_id ON executions (job, id)")
    db.execute("CREATE INDEX executions_status_id ON executions (status, id)")
    db.execute("CREATE INDEX executions_finished_at ON executions (finished_at)")
    db.execute("CREATE INDEX executions_run_id ON executions (run_id)")
    # Small: only unfinished rows, read at start-up and by concurrency=forbid.
    db.execute(
        "CREATE INDEX executions_active ON executions (job, status) "
        "WHERE status IN ('pending', 'awaiting_approval', 'queued', 'running')"
    )
    db.execute(
        """
        CREATE TABLE jobs (
            name TEXT PRIMARY KEY,
            definition TEXT NOT NULL,
            definition_hash TEXT NOT NULL,
            version INTEGER NOT NULL,
            source TEXT NOT NULL,
            seq INTEGER NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            updated_by TEXT NOT NULL DEFAULT '',
            deleted_at REAL
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX jobs_seq ON jobs (seq)")
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    # DESIGN.md: the epoch is minted when the database is created, so a console that
    # sees a new one resyncs from the start instead of trusting its cursor.
    db.execute("INSERT INTO meta (key, value) VALUES ('epoch', ?)", [f'"{secrets.token_hex(16)}"'])


@_migration("0002_alerts")
def _m0002_alerts(db: sqlite_utils.Database) -> None:
    # The alerts package owns its tables (docs/alerts.md); the migration is registered here
    # so that every reader of the store knows it, daemon or not.
    from agentd.alerts.schema import create_alert_tables

    create_alert_tables(db)


@_migration("0003_approvals_audit")
def _m0003_approvals_audit(db: sqlite_utils.Database) -> None:
    # Approvals and the audit log own their tables (docs/approvals.md, docs/audit.md).
    from agentd.approvals import create_approval_tables
    from agentd.audit import create_audit_tables

    create_approval_tables(db)
    create_audit_tables(db)


def migrate(db: sqlite_utils.Database, path: Path | str) -> None:
    """Apply pending migrations; raise ``StoreTooNew`` if the file knows migrations we don't."""
    unknown = unknown_migrations(db)
    if unknown:
        raise StoreTooNew(path, unknown)
    MIGRATIONS.apply(db)


def unknown_migrations(db: sqlite_utils.Database) -> list[str]:
    """Migrations applied to ``db`` that this build does not know (a newer build wrote it)."""
    return [m.name for m in MIGRATIONS.applied(db) if m.name not in _KNOWN]


def next_seq(db: sqlite_utils.Database, count: int = 1) -> int:
    """Take ``count`` consecutive change numbers and return the first.

    Call inside the transaction that makes the change, so the numbers are given
    back if it rolls back.
    """
    # sqlite_sequence holds seq_counter's AUTOINCREMENT high-water mark, and SQLite
    # documents that ordinary UPDATE and INSERT statements may change it: one UPDATE ...
    # RETURNING costs a third of inserting and deleting a counter row per change.
    rows = db.execute(
        "UPDATE sqlite_sequence SET seq = seq + ? WHERE name = 'seq_counter' RETURNING seq",
        [count],
    ).fetchall()
    if not rows:  # a new database: start the counter at 0
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('seq_counter', 0)")
        return next_seq(db, count)
    return int(rows[0][0]) - count + 1
