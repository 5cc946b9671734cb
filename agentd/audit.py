"""The agent's audit log on disk: the ``audit`` table, its head, append, read and verify.

Small sync functions for the store thread (STYLE.md habit 9):
``await store.call(audit.append, at=..., actor=..., ...)``. ``append`` takes
the head, makes the next entry with ``shared.audit.make_entry`` and writes the
entry and the new head in one transaction, so the chain never forks. Call it
inside the transaction of the change it records when you can (approvals do);
otherwise right after the change commits.

Append-only is enforced twice: triggers make SQLite refuse UPDATE and DELETE
on the table, and the hash chain with its head makes any edit that bypasses
them (a dropped trigger, a hex editor) visible to ``verify``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlite_utils

from agentd.store import meta
from shared.audit import AuditEntry, ChainReport, Head, make_entry, verify_chain

__all__ = [
    "HEAD_KEY",
    "append",
    "create_audit_tables",
    "entries_since",
    "head",
    "verify",
]

HEAD_KEY = "audit_head"
_COLUMNS = (
    "seq",
    "at",
    "actor",
    "origin",
    "action",
    "target",
    "before_hash",
    "after_hash",
    "detail",
    "prev_hash",
    "hash",
)


def create_audit_tables(db: sqlite_utils.Database) -> None:
    """Create the audit table and its append-only triggers (called by migration 0003)."""
    db.execute(
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            origin TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            before_hash TEXT NOT NULL DEFAULT '',
            after_hash TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}',
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX audit_target ON audit (target, seq)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
        )


def head(db: sqlite_utils.Database) -> Head:
    """The last entry's seq and hash as recorded beside the log."""
    raw = meta.get(db, HEAD_KEY)
    if not isinstance(raw, dict):
        return Head()
    return Head(seq=int(raw.get("seq", 0)), hash=str(raw.get("hash", Head().hash)))


def append(
    db: sqlite_utils.Database,
    *,
    at: float,
    actor: str,
    origin: str,
    action: str,
    target: str,
    before_hash: str = "",
    after_hash: str = "",
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry after the current head and move the head, in one transaction."""
    with db.atomic():
        entry = make_entry(
            head(db),
            at=at,
            actor=actor,
            origin=origin,
            action=action,
            target=target,
            before_hash=before_hash,
            after_hash=after_hash,
            detail={str(k): str(v) for k, v in (detail or {}).items()},
        )
        row = _row(entry)
        db.execute(
            f"INSERT INTO audit ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            [row[c] for c in _COLUMNS],
        )
        meta.set(db, HEAD_KEY, {"seq": entry.seq, "hash": entry.hash})
    return entry


def entries_since(
    db: sqlite_utils.Database,
    seq: int,
    limit: int,
    *,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """Up to ``limit`` entries after ``seq`` in order (the sync cursor), optionally filtered."""
    where, args = ["seq > ?"], [seq]
    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)  # type: ignore[arg-type]
    sql = (
        f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?"
    )
    return [_entry(r) for r in db.execute(sql, [*args, limit]).fetchall()]


def verify(db: sqlite_utils.Database) -> ChainReport:
    """Walk the whole log in seq order against its head; the first bad entry, or ok.

    A row that cannot even be read back as an entry (a mangled type) is itself
    reported as edited, never raised.
    """

    def rows() -> Any:
        cursor = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY seq")
        yield from cursor

    checked = 0
    entries: list[AuditEntry] = []
    for values in rows():
        try:
            entries.append(_entry(values))
        except (ValueError, TypeError) as exc:
            seq = values[0]
            return ChainReport(
                ok=False,
                checked=checked,
                bad_seq=seq if isinstance(seq, int) else None,
                why=f"entry {seq} was edited: it cannot be read back ({exc})",
            )
        checked += 1
    try:
        stored_head = head(db)
    except (ValueError, TypeError) as exc:
        return ChainReport(
            ok=False, checked=0, bad_seq=None, why=f"the audit head is unreadable ({exc})"
        )
    return verify_chain(entries, head=stored_head)


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor": entry.actor,
        "origin": entry.origin,
        "action": entry.action,
        "target": entry.target,
        "before_hash": entry.before_hash,
        "after_hash": entry.after_hash,
        "detail": json.dumps(entry.detail, sort_keys=True),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def _entry(values: tuple[Any, ...]) -> AuditEntry:
    row = dict(zip(_COLUMNS, values, strict=True))
    detail = json.loads(row["detail"])
    if not isinstance(detail, dict):
        raise ValueError("detail is not a JSON object")
    for name in ("seq",):
        if not isinstance(row[name], int):
            raise TypeError(f"{name} is not an integer")
    if not isinstance(row["at"], int | float):
        raise TypeError("at is not a number")
    for name in ("actor", "origin", "action", "target", "before_hash", "after_hash"):
        if not isinstance(row[name], str):
            raise TypeError(f"{name} is not text")
    if row["detail"] != json.dumps(detail, sort_keys=True):
        # The hash covers the parsed detail; the stored text must also be the canonical
        # one, so that a change of any byte (even spacing) is caught.
        raise ValueError("detail is not in its canonical form")
    return AuditEntry(
        seq=row["seq"],
        at=float(row["at"]),
        actor=row["actor"],
        origin=row["origin"],
        action=row["action"],
        target=row["target"],
        before_hash=row["before_hash"],
        after_hash=row["after_hash"],
        detail={str(k): str(v) for k, v in detail.items()},
        prev_hash=str(row["prev_hash"]),
        hash=str(row["hash"]),
    )
