"""The audit log, pure: an entry's canonical form, the hash chain, and its verification.

DESIGN.md: every change of state the agent accepts is recorded in an
append-only log whose entries are hash-chained. Entry ``n`` carries
``prev_hash`` (entry ``n-1``'s hash; ``GENESIS`` for the first) and its own
``hash`` = SHA-256 of the preamble and the canonical JSON of every other
field. ``verify_chain`` walks entries in ``seq`` order and names the first one
that was edited, dropped or reordered, and the *head* (seq and hash of the
last entry, kept beside the log) catches entries cut from the end.

Pure: ``agentd.audit`` stores and reads; the console can run the same check
on what it synced.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated

import msgspec

__all__ = [
    "GENESIS",
    "AuditBatch",
    "AuditEntry",
    "AuditSince",
    "ChainReport",
    "Head",
    "entry_hash",
    "make_entry",
    "verify_chain",
]

GENESIS = "0" * 64
_PREAMBLE = b"squ-cron audit entry v1\n"


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One accepted change of state: who, what, when, from where, before and after."""

    seq: int  # 1, 2, 3, ... with no gap: a missing number is a dropped entry
    at: float
    actor: str  # operator name, or "agent" / "schedule" for the agent's own acts
    origin: str  # "wire 10.0.0.5:51234", "control", "jobs.d", "agent"
    action: str  # "job.put", "run", "approval.approved", ... (docs/audit.md)
    target: str  # job name, execution id or request id
    before_hash: str = ""
    after_hash: str = ""
    detail: dict[str, str] = {}
    prev_hash: str
    hash: str = ""


class Head(msgspec.Struct, frozen=True, kw_only=True):
    """The last entry's seq and hash, stored beside the log (0 and GENESIS when empty)."""

    seq: int = 0
    hash: str = GENESIS


class ChainReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``verify_chain`` found: ``ok``, how many entries it checked, the first bad one."""

    ok: bool
    checked: int
    bad_seq: int | None = None
    why: str = ""


class AuditSince(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``audit.since``: entries after ``seq`` (the sync cursor), optionally filtered."""

    seq: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 500
    actor: str | None = None
    action: str | None = None
    target: str | None = None


class AuditBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the log in seq order, with the head when it was read (to verify a tail)."""

    entries: list[AuditEntry]
    head: Head
    more: bool = False


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 (hex) of the entry's canonical form: every field but ``hash``, sorted keys."""
    fields = msgspec.structs.asdict(entry)
    del fields["hash"]
    return hashlib.sha256(_PREAMBLE + msgspec.json.encode(fields, order="sorted")).hexdigest()


def make_entry(
    head: Head,
    *,
    at: float,
    actor: str,
    origin: str,
    action: str,
    target: str,
    before_hash: str = "",
    after_hash: str = "",
    detail: Mapping[str, str] | None = None,
) -> AuditEntry:
    """The entry that follows ``head``, hashed; store it and make it the new head together."""
    draft = AuditEntry(
        seq=head.seq + 1,
        at=at,
        actor=actor,
        origin=origin,
        action=action,
        target=target,
        before_hash=before_hash,
        after_hash=after_hash,
        detail={str(k): str(v) for k, v in (detail or {}).items()},
        prev_hash=head.hash,
    )
    return msgspec.structs.replace(draft, hash=entry_hash(draft))


def verify_chain(
    entries: Iterable[AuditEntry], *, head: Head | None = None, start: Head | None = None
) -> ChainReport:
    """Check ``entries`` (in the order stored, by seq) and say which is the first bad one.

    ``start`` is the entry before the first one given (default: the log's
    beginning), so a console can verify a synced tail. ``head`` is the stored
    head; without it, entries cut from the end cannot be seen.
    """
    previous = start or Head()
    checked = 0
    for entry in entries:
        expected = previous.seq + 1
        if entry.seq > expected:
            which = (
                f"entry {expected} is"
                if entry.seq == expected + 1
                else f"entries {expected}-{entry.seq - 1} are"
            )
            return _bad(
                checked,
                expected,
                f"{which} missing or out of place (entry {entry.seq} follows entry "
                f"{previous.seq}): entries were dropped or reordered",
            )
        if entry.seq < expected:
            return _bad(
                checked,
                entry.seq,
                f"entry {entry.seq} appears again after entry {previous.seq}: "
                "entries were reordered or duplicated",
            )
        if entry.prev_hash != previous.hash:
            return _bad(
                checked,
                entry.seq,
                f"entry {entry.seq} ({entry.action} by {entry.actor}) does not chain to entry "
                f"{previous.seq}: entries were reordered, or one was replaced",
            )
        if entry_hash(entry) != entry.hash:
            return _bad(
                checked,
                entry.seq,
                f"entry {entry.seq} ({entry.action} by {entry.actor}) was edited: "
                "its content does not match its hash",
            )
        previous = Head(seq=entry.seq, hash=entry.hash)
        checked += 1
    if head is not None:
        if head.seq > previous.seq:
            return _bad(
                checked,
                previous.seq + 1,
                f"the log ends at entry {previous.seq} but its head records entry {head.seq}: "
                "entries were dropped from the end",
            )
        if head.seq < previous.seq:
            return _bad(
                checked,
                head.seq + 1,
                f"the head records entry {head.seq} but the log goes on to {previous.seq}: "
                "the head was rolled back or entries were added outside the agent",
            )
        if head.hash != previous.hash:
            return _bad(
                checked,
                previous.seq,
                f"entry {previous.seq} does not match the hash its head records: "
                "the last entry or the head was edited",
            )
    return ChainReport(ok=True, checked=checked)


def _bad(checked: int, seq: int, why: str) -> ChainReport:
    return ChainReport(ok=False, checked=checked, bad_seq=seq, why=why)
