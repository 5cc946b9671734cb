"""console/auditcopy: the console's copy of the audit logs takes only what continues its chain."""

from __future__ import annotations

from pathlib import Path

import msgspec

from console.auditcopy import AuditCopy
from shared.audit import AuditBatch, AuditEntry, Head, entry_hash, make_entry


def log(n: int, actor: str = "alice") -> list[AuditEntry]:
    entries, head = [], Head()
    for i in range(n):
        entry = make_entry(
            head, at=1.8e9 + i, actor=actor, origin="o", action="run", target=f"t{i}"
        )
        head = Head(seq=entry.seq, hash=entry.hash)
        entries.append(entry)
    return entries


def serving(entries: list[AuditEntry], page: int = 2):  # type: ignore[no-untyped-def]
    """An ``audit.since`` over ``entries``, ``page`` entries at a time."""

    async def since(seq: int, limit: int) -> AuditBatch:
        after = [e for e in entries if e.seq > seq]
        head = Head(seq=entries[-1].seq, hash=entries[-1].hash) if entries else Head()
        return AuditBatch(entries=after[:page], head=head, more=len(after) > page)

    return since


async def test_sync_pulls_every_page(tmp_path: Path) -> None:
    """All entries arrive over several pages and are held in order."""
    copy = AuditCopy(tmp_path / "audit.db")
    result = await copy.sync_agent("db1", serving(log(5)))
    assert (result.ok, result.added, result.held) == (True, 5, 5)
    assert [e.seq for _, e in copy.entries("db1")] == [1, 2, 3, 4, 5]


async def test_second_sync_adds_only_new_entries(tmp_path: Path) -> None:
    """A later sync continues from the last entry held."""
    copy = AuditCopy(tmp_path / "audit.db")
    entries = log(6)
    await copy.sync_agent("db1", serving(entries[:3]))
    result = await copy.sync_agent("db1", serving(entries))
    assert (result.ok, result.added, result.held) == (True, 3, 6)


async def test_rewritten_history_diverges(tmp_path: Path) -> None:
    """A log rebuilt consistently with other content no longer continues the copy."""
    copy = AuditCopy(tmp_path / "audit.db")
    await copy.sync_agent("db1", serving(log(3)))
    result = await copy.sync_agent("db1", serving(log(5, actor="mallory")))
    assert not result.ok and result.added == 0
    assert [e.actor for _, e in copy.entries("db1")] == ["alice"] * 3


async def test_cut_log_diverges(tmp_path: Path) -> None:
    """An agent log shorter than the copy (restored or cut) is reported, not taken."""
    copy = AuditCopy(tmp_path / "audit.db")
    await copy.sync_agent("db1", serving(log(4)))
    result = await copy.sync_agent("db1", serving(log(2)))
    assert not result.ok and "restored from a backup, or cut" in result.why


async def test_edited_entry_in_a_page_is_refused(tmp_path: Path) -> None:
    """A page whose entry does not match its hash is not stored."""
    entries = log(3)
    forged = msgspec.structs.replace(entries[1], target="elsewhere")
    entries[1] = msgspec.structs.replace(forged, hash=entry_hash(forged))
    copy = AuditCopy(tmp_path / "audit.db")
    result = await copy.sync_agent("db1", serving(entries, page=10))
    assert not result.ok and copy.head("db1") == Head()
