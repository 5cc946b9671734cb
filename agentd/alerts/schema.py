"""The alert tables, created by the store's migration ``0002_alerts`` (agentd/store/schema.py).

Shipped: never edit this function; a later change is a new migration.
"""

from __future__ import annotations

import sqlite_utils

__all__ = ["create_alert_tables"]


def create_alert_tables(db: sqlite_utils.Database) -> None:
    """Create ``alerts``, ``alert_deliveries`` and ``alert_job_state`` (inside the migration)."""
    db.execute(
        """
        CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            job TEXT NOT NULL,
            server TEXT NOT NULL,
            execution_id TEXT NOT NULL,
            run_id TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            seq INTEGER NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            attempts INTEGER NOT NULL DEFAULT 1,
            exit_code INTEGER,
            signal INTEGER,
            duration_ms INTEGER,
            scheduled_for REAL,
            reason TEXT NOT NULL DEFAULT '',
            acked_at REAL,
            acked_by TEXT NOT NULL DEFAULT '',
            routed INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX alerts_seq ON alerts (seq)")
    db.execute("CREATE INDEX alerts_job_created ON alerts (job, created_at)")
    db.execute("CREATE INDEX alerts_created ON alerts (created_at)")
    # Small: only alerts the delivery loop has not routed to channels yet.
    db.execute("CREATE INDEX alerts_unrouted ON alerts (routed) WHERE routed = 0")
    db.execute(
        """
        CREATE TABLE alert_deliveries (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            channel TEXT NOT NULL,
            job TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT NOT NULL DEFAULT '',
            sent_at REAL,
            message_id TEXT NOT NULL DEFAULT '',
            UNIQUE (alert_id, channel)
        )
        """
    )
    db.execute(
        "CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) "
        "WHERE state = 'pending'"
    )
    db.execute("CREATE INDEX alert_deliveries_sent ON alert_deliveries (sent_at, channel, job)")
    db.execute(
        "CREATE TABLE alert_job_state (job TEXT PRIMARY KEY, failing INTEGER NOT NULL DEFAULT 0)"
    )
