"""The supervisor's journal: started records live until acknowledged, across reopenings."""

from __future__ import annotations

from agentd.supervisor import journal as journal_mod
from agentd.supervisor.journal import Journal, read_journal
from agentd.supervisor.records import StartedFile


def _started(exec_id: str) -> StartedFile:
    return StartedFile(exec_id=exec_id, pid=42, boot_id="b", start_ticks=7, started_at=1.0)


def test_started_until_acked_and_survives_reopening(tmp_path):
    """A started record is live until acked, also for a new Journal on the same file."""
    path = tmp_path / "journal"
    j = Journal(path)
    j.started(_started("A"))
    j.started(_started("B"))
    j.acked("A")
    j.close()
    assert set(read_journal(path)) == {"B"}
    assert Journal(path).live == {"B": _started("B")}


def test_torn_last_line_is_ignored(tmp_path):
    """A half-written last line (power loss) is skipped, the rest is read."""
    path = tmp_path / "journal"
    j = Journal(path)
    j.started(_started("A"))
    j.close()
    with path.open("ab") as f:
        f.write(b'S {"exec_id": "B", "pi')
    assert set(read_journal(path)) == {"A"}


def test_compaction_keeps_only_live_records(tmp_path, monkeypatch):
    """Past the size limit the file is rewritten with only the live records."""
    monkeypatch.setattr(journal_mod, "COMPACT_BYTES", 2000)
    path = tmp_path / "journal"
    j = Journal(path)
    j.started(_started("KEEP"))
    for i in range(100):
        j.started(_started(f"X{i}"))
        j.acked(f"X{i}")
    assert path.stat().st_size < 2000 + 400
    assert set(read_journal(path)) == {"KEEP"}
    j.close()


def test_ack_of_unknown_id_writes_nothing(tmp_path):
    """Acknowledging an id that is not live leaves the file unchanged."""
    path = tmp_path / "journal"
    j = Journal(path)
    size = path.stat().st_size
    j.acked("NOPE")
    assert path.stat().st_size == size
    j.close()
