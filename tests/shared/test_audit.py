"""shared/audit: canonical entries, the hash chain, and verify naming the first bad entry."""

from __future__ import annotations

import msgspec
import pytest

from shared.audit import GENESIS, AuditEntry, Head, entry_hash, make_entry, verify_chain


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    head = Head()
    for i in range(n):
        entry = make_entry(
            head,
            at=1_800_000_000.0 + i,
            actor="alice",
            origin="wire 127.0.0.1:5000",
            action="job.put",
            target=f"job{i}",
            before_hash="",
            after_hash=f"{i:064x}",
            detail={"version": str(i + 1)},
        )
        entries.append(entry)
        head = Head(seq=entry.seq, hash=entry.hash)
    return entries


def head_of(entries: list[AuditEntry]) -> Head:
    return Head(seq=entries[-1].seq, hash=entries[-1].hash)


def test_entries_chain_from_genesis() -> None:
    """The first entry follows GENESIS and each next one names the previous hash."""
    entries = chain(3)
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert [e.seq for e in entries] == [1, 2, 3]


def test_intact_chain_verifies() -> None:
    """An untouched log with its head verifies, counting every entry."""
    entries = chain(5)
    assert verify_chain(entries, head=head_of(entries)).ok
    assert verify_chain(entries, head=head_of(entries)).checked == 5


def test_empty_log_verifies() -> None:
    """No entries and an empty head is a valid log."""
    assert verify_chain([], head=Head()).ok


@pytest.mark.parametrize(
    "field", ["at", "actor", "origin", "action", "target", "before_hash", "after_hash", "detail"]
)
def test_edited_field_is_named(field: str) -> None:
    """Changing any field of an entry is found, and that entry is named as edited."""
    entries = chain(5)
    value = getattr(entries[2], field)
    changed: object = (
        value + 1
        if isinstance(value, float)
        else {"version": "9"}
        if isinstance(value, dict)
        else value + "x"
    )
    entries[2] = msgspec.structs.replace(entries[2], **{field: changed})
    report = verify_chain(entries, head=head_of(entries))
    assert not report.ok
    assert report.bad_seq == 3
    assert "edited" in report.why


def test_rehashed_edit_breaks_the_next_link() -> None:
    """An edit that also recomputes its own hash is caught at the following entry."""
    entries = chain(5)
    forged = msgspec.structs.replace(entries[1], actor="mallory")
    entries[1] = msgspec.structs.replace(forged, hash=entry_hash(forged))
    report = verify_chain(entries, head=head_of(entries))
    assert (report.ok, report.bad_seq) == (False, 3)
    assert "does not chain" in report.why


def test_dropped_entry_is_named() -> None:
    """A missing entry in the middle is named by its seq."""
    entries = chain(5)
    del entries[2]
    report = verify_chain(entries, head=head_of(entries))
    assert (report.ok, report.bad_seq) == (False, 3)
    assert "entry 3 is missing" in report.why and "dropped" in report.why


def test_dropped_tail_is_found_by_the_head() -> None:
    """Cutting entries from the end is found by comparing with the head."""
    entries = chain(5)
    report = verify_chain(entries[:3], head=head_of(entries))
    assert (report.ok, report.bad_seq) == (False, 4)
    assert "dropped from the end" in report.why


def test_reordered_entries_are_named() -> None:
    """Two entries swapped (seq numbers and all) are found at the first out-of-place one."""
    entries = chain(5)
    entries[1], entries[2] = entries[2], entries[1]
    report = verify_chain(entries, head=head_of(entries))
    assert (report.ok, report.bad_seq) == (False, 2)
    assert "reordered" in report.why


def test_renumbered_swap_is_named() -> None:
    """Swapping the seq numbers of two entries breaks the chain at the first."""
    entries = chain(5)
    a, b = entries[1], entries[2]
    entries[1] = msgspec.structs.replace(b, seq=2)
    entries[2] = msgspec.structs.replace(a, seq=3)
    report = verify_chain(entries, head=head_of(entries))
    assert (report.ok, report.bad_seq) == (False, 2)


def test_edited_head_is_found() -> None:
    """A head whose hash does not match the last entry is reported."""
    entries = chain(3)
    report = verify_chain(entries, head=Head(seq=3, hash="f" * 64))
    assert (report.ok, report.bad_seq) == (False, 3)


def test_tail_verifies_from_a_start() -> None:
    """A synced tail verifies from the entry before it (the console's case)."""
    entries = chain(6)
    start = Head(seq=entries[2].seq, hash=entries[2].hash)
    assert verify_chain(entries[3:], start=start, head=head_of(entries)).ok
