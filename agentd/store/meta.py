"""Small agent state as JSON values by key: epoch, boot id, last tick per job, clock pairs.

Meta values are local bookkeeping, not synced, so they take no ``seq``. Keys in
use are listed in docs/store.md; ``epoch`` is written by the first migration
and read by ``Store.open``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

__all__ = ["delete", "get", "set"]


def get(db: sqlite_utils.Database, key: str, default: Any = None) -> Any:
    """The value stored under ``key``, or ``default`` if there is none."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return default if row is None else json.loads(row[0])


def set(db: sqlite_utils.Database, key: str, value: Any) -> None:
    """Store ``value`` (anything JSON can hold) under ``key``, replacing what was there."""
    text = json.dumps(value, separators=(",", ":"))
    with db.atomic():
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, text],
        )


def delete(db: sqlite_utils.Database, key: str) -> None:
    """Forget ``key``; no error if it was not set."""
    with db.atomic():
        db.execute("DELETE FROM meta WHERE key = ?", [key])
