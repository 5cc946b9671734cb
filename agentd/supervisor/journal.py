"""The supervisor's journal: which executions were started and not yet acknowledged.

``DATA/supervisor/journal`` is append-only text, one record per line:
``S <started json>`` when a job is spawned (before ``Started`` is reported) and
``A <exec_id>`` when the agent acknowledges its exit. Replaying it gives the
executions a restarted supervisor must re-adopt, close as lost, or replay.

Why a journal and not a file per execution: an append is one ``write`` to an
open file, while creating and removing a marker file are two metadata
operations in one shared directory, which cost 1-9 ms each on a busy ext4
(docs/decisions/0001-supervisor.md). Appends are not fsync'd: they must
survive a crash of the process (the page cache does); after a power loss the
boot id changes and every unfinished execution is lost anyway. A torn last
line is ignored. The file is rewritten with only the live records when it
has grown past ``COMPACT_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from agentd.supervisor.records import StartedFile

__all__ = ["COMPACT_BYTES", "Journal", "read_journal"]

COMPACT_BYTES = 4 * 1024 * 1024

_decoder = msgspec.json.Decoder(StartedFile)


def read_journal(path: Path) -> dict[str, StartedFile]:
    """The live (started, not acknowledged) records in the journal at ``path``."""
    live: dict[str, StartedFile] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return live
    for line in data.split(b"\n"):
        if line.startswith(b"S "):
            try:
                started = _decoder.decode(line[2:])
            except msgspec.DecodeError:
                continue  # a torn line from a power loss
            live[started.exec_id] = started
        elif line.startswith(b"A "):
            live.pop(line[2:].decode("utf-8", "replace"), None)
    return live


class Journal:
    """The supervisor's single writer of the journal. Not thread-safe; the loop owns it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.live = read_journal(path)
        self._fd = -1
        self._size = 0
        self.compact()

    def compact(self) -> None:
        """Rewrite the file with only the live records (tmp + rename), then append to it."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        body = b"".join(b"S " + msgspec.json.encode(s) + b"\n" for s in self.live.values())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(body)

    def _append(self, line: bytes) -> None:
        os.write(self._fd, line)  # one write of a short line: appended whole
        self._size += len(line)

    def started(self, started: StartedFile) -> None:
        """Record a spawn; call before reporting ``Started``."""
        self.live[started.exec_id] = started
        self._append(b"S " + msgspec.json.encode(started) + b"\n")

    def acked(self, exec_id: str) -> None:
        """The agent has recorded the exit: forget the execution."""
        if self.live.pop(exec_id, None) is None:
            return
        self._append(b"A " + exec_id.encode() + b"\n")
        if self._size > COMPACT_BYTES and self._size > 8 * len(self.live) * 512:
            self.compact()

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
