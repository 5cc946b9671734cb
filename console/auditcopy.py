"""The console's copy of every agent's audit log: synced upward like history, checked on arrival.

DESIGN.md: the audit log is "synced upward like history". The copy lives in
its own SQLite file beside the mirror (``audit.db``), one row per (agent,
seq). ``sync_agent`` asks ``audit.since`` from the last entry held, checks
each page with ``shared.audit.verify_chain`` starting from that entry and
against the head the agent sent, and stores it only if it holds. So an
agent whose log was rewritten (even consistently, chain and head together)
no longer continues the chain the console holds, and the copy says so
instead of taking it. Nothing here decides anything for the agent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import sqlite_utils

from shared.audit import AuditBatch, AuditEntry, Head, verify_chain

__all__ = ["AUDIT_FILE", "AuditCopy", "SyncResult"]

AUDIT_FILE = "audit.db"
PAGE = 1000
_COLUMNS = (
    "seq", "at", "actor", "origin", "action", "target", "before_hash", "after_hash", "detail",
    "prev_hash", "hash",
)  # fmt: skip


class SyncResult(msgspec.Struct, frozen=True, kw_only=True):
    agent: str
    added: int
    held: int
    ok: bool
    why: str = ""


class AuditCopy:
    """``AuditCopy(path)``: open (or create) the copy; ``close()`` when done."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite_utils.Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS audit_entries (agent TEXT NOT NULL, seq INTEGER NOT NULL, "
            "at REAL NOT NULL, actor TEXT NOT NULL, origin TEXT NOT NULL, action TEXT NOT NULL, "
            "target TEXT NOT NULL, before_hash TEXT NOT NULL, after_hash TEXT NOT NULL, "
            "detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL, "
            "PRIMARY KEY (agent, seq))"
        )

    def close(self) -> None:
        self.db.close()

    def head(self, agent: str) -> Head:
        row = self.db.execute(
            "SELECT seq, hash FROM audit_entries WHERE agent = ? ORDER BY seq DESC LIMIT 1",
            [agent],
        ).fetchone()
        return Head() if row is None else Head(seq=row[0], hash=row[1])

    def entries(
        self, agent: str | None = None, *, action: str | None = None, limit: int = 100
    ) -> list[tuple[str, AuditEntry]]:
        """The newest ``limit`` entries held (of ``agent``, of ``action``), oldest first."""
        where, args = [], []
        for column, value in (("agent", agent), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = (
            f"SELECT agent, {', '.join(_COLUMNS)} FROM audit_entries "
            f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY at DESC LIMIT ?"
        )
        rows = self.db.execute(sql, [*args, limit]).fetchall()
        return [(r[0], _entry(r[1:])) for r in reversed(rows)]

    async def sync_agent(
        self, agent: str, since: Callable[[int, int], Awaitable[AuditBatch]]
    ) -> SyncResult:
        """Pull ``agent``'s new entries with ``since(seq, limit)`` (audit.since), checked."""
        added = 0
        while True:
            held = self.head(agent)
            batch = await since(held.seq, PAGE)
            if batch.head.seq < held.seq:
                why = (
                    f"the agent's log ends at entry {batch.head.seq} but the console holds "
                    f"entries up to {held.seq}: restored from a backup, or cut"
                )
                return SyncResult(agent=agent, added=added, held=held.seq, ok=False, why=why)
            report = verify_chain(
                batch.entries, start=held, head=None if batch.more else batch.head
            )
            if not report.ok:
                why = f"{report.why} (checked against the {held.seq} entries the console holds)"
                return SyncResult(agent=agent, added=added, held=held.seq, ok=False, why=why)
            with self.db.conn:
                self.db.conn.executemany(
                    f"INSERT OR IGNORE INTO audit_entries (agent, {', '.join(_COLUMNS)}) "
                    f"VALUES (?, {', '.join('?' * len(_COLUMNS))})",
                    [[agent, *_row(e)] for e in batch.entries],
                )
            added += len(batch.entries)
            if not batch.more:
                return SyncResult(agent=agent, added=added, held=self.head(agent).seq, ok=True)


def _row(e: AuditEntry) -> list[Any]:
    fields = msgspec.structs.asdict(e)
    fields["detail"] = json.dumps(e.detail, sort_keys=True)
    return [fields[c] for c in _COLUMNS]


def _entry(values: tuple[Any, ...]) -> AuditEntry:
    fields = dict(zip(_COLUMNS, values, strict=True))
    fields["detail"] = json.loads(fields["detail"])
    return msgspec.convert(fields, AuditEntry)
