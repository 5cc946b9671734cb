"""write_atomic: the whole new file or the old one, with its mode from the first byte."""

from __future__ import annotations

import stat
from pathlib import Path

from agentd.fsutil import write_atomic


def test_new_file_has_the_mode_and_all_the_bytes(tmp_path: Path) -> None:
    """A 3 MiB key-like file is written whole with mode 0600 and no temporary left behind."""
    data = bytes(range(256)) * (3 * 4096)
    target = tmp_path / "agent.key"
    write_atomic(target, data, mode=0o600)
    assert target.read_bytes() == data
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["agent.key"]


def test_replacing_keeps_no_trace_of_the_old_content(tmp_path: Path) -> None:
    """Replacing a longer file leaves exactly the new bytes (no truncation artefacts)."""
    target = tmp_path / "exit.json"
    target.write_bytes(b"x" * 1000)
    write_atomic(target, b'{"ok": true}', mode=0o640, fsync=False)
    assert target.read_bytes() == b'{"ok": true}'
