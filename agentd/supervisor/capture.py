"""One execution's output sink: frames into ``output.log``, head + tail under a byte cap.

While the job runs, the first half of ``max_log_bytes`` goes to ``output.log``
(after ``MAGIC``); when it is full a ``HEAD_END`` frame is written and later
output goes to tail segment files ``tail-<n>.log`` of up to half the cap each,
of which only the newest two are kept, so disk use stays under 1.5x the cap
and memory use is nothing beyond the caller's read buffer. ``finish()`` appends
a ``DROPPED`` marker and exactly the last half-cap of bytes to ``output.log``
and removes the segments, so the finished log is one file: head, marker, tail.

A write error (disk full) never stops the job or the supervisor: from then on
bytes are counted as dropped and the error is reported in the exit record.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from shared.logframe import HEADER, MAGIC, Kind, Stream, encode_dropped, encode_frame, encode_header

__all__ = ["LOG_NAME", "LogSink", "tail_segment_path"]

LOG_NAME = "output.log"
_COPY_CHUNK = 1024 * 1024


def tail_segment_path(run_dir: Path, index: int) -> Path:
    return run_dir / f"tail-{index:06d}.log"


class _Segment:
    __slots__ = ("fd", "index", "payload", "per_stream")

    def __init__(self, fd: int, index: int) -> None:
        self.fd = fd
        self.index = index
        self.payload = 0
        self.per_stream = [0, 0, 0]


class LogSink:
    """Where one job's stdout and stderr bytes go. Single-threaded use only."""

    def __init__(
        self, run_dir: Path, max_log_bytes: int, *, clock_ns: Callable[[], int] = time.time_ns
    ) -> None:
        self.run_dir = run_dir
        self.max_log_bytes = max(0, max_log_bytes)
        self.tail_budget = self.max_log_bytes // 2
        self.head_budget = self.max_log_bytes - self.tail_budget
        self._clock_ns = clock_ns
        self.total = [0, 0, 0]  # bytes seen, by stream index
        self.head_used = 0
        self.head_per_stream = [0, 0, 0]
        self.error = ""
        self._segments: list[_Segment] = []
        self._in_tail = False
        self._finished = False
        # Created on the first byte: a job that prints nothing costs no file (a file
        # create is ~1 ms on a busy ext4, a large part of a short job's cost).
        self._fd = -1

    @property
    def fd(self) -> int:
        if self._fd < 0:
            self._fd = os.open(
                self.run_dir / LOG_NAME,
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o640,
            )
            self._write(self._fd, [MAGIC])
        return self._fd

    @property
    def needs_copy(self) -> bool:
        """Whether ``finish`` will copy a tail (worth running in a thread)."""
        return self._in_tail

    @property
    def log_bytes(self) -> int:
        """Bytes the job wrote, both streams, kept or not."""
        return self.total[1] + self.total[2]

    def _write(self, fd: int, parts: list[bytes | memoryview]) -> bool:
        if self.error:
            return False
        try:
            want = sum(len(p) for p in parts)
            done = os.writev(fd, parts)
            while done < want:  # short write: finish it byte-exactly
                rest = b"".join(bytes(p) for p in parts)[done:]
                done += os.write(fd, rest)
        except OSError as exc:
            self.error = f"log write failed: {exc.strerror or exc}"
            return False
        return True

    def write(self, stream: Stream, data: memoryview) -> None:
        """Record ``data`` read from ``stream`` now."""
        n = len(data)
        if n == 0:
            return
        self.total[stream] += n
        t_us = self._clock_ns() // 1000
        if not self._in_tail:
            take = min(n, self.head_budget - self.head_used)
            if take > 0:
                header = encode_header(Kind.DATA, stream, t_us, take)
                if self._write(self.fd, [header, data[:take]]):
                    self.head_used += take
                    self.head_per_stream[stream] += take
            if take == n:
                return
            data = data[take:]
            self._in_tail = True
            self._write(self.fd, [encode_frame(Kind.HEAD_END, Stream.NONE, t_us, b"")])
        self._write_tail(stream, t_us, data)

    def _write_tail(self, stream: Stream, t_us: int, data: memoryview) -> None:
        if self.tail_budget == 0:
            return
        if len(data) > self.tail_budget:
            # Only the last tail_budget bytes of this chunk can survive.
            data = data[len(data) - self.tail_budget :]
            self._rotate(force=True)
        seg = self._current_segment()
        if seg is None:
            return
        if seg.payload >= self.tail_budget:
            seg = self._rotate()
            if seg is None:
                return
        header = encode_header(Kind.DATA, stream, t_us, len(data))
        if self._write(seg.fd, [header, data]):
            seg.payload += len(data)
            seg.per_stream[stream] += len(data)

    def _current_segment(self) -> _Segment | None:
        if not self._segments:
            return self._open_segment(1)
        return self._segments[-1]

    def _open_segment(self, index: int) -> _Segment | None:
        try:
            fd = os.open(
                tail_segment_path(self.run_dir, index),
                os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                0o640,
            )
        except OSError as exc:
            self.error = self.error or f"log write failed: {exc.strerror or exc}"
            return None
        seg = _Segment(fd, index)
        self._segments.append(seg)
        return seg

    def _rotate(self, *, force: bool = False) -> _Segment | None:
        """Start a new segment; drop all but the newest one before it (none if ``force``)."""
        index = self._segments[-1].index + 1 if self._segments else 1
        keep = 0 if force else 1
        while len(self._segments) > keep:
            old = self._segments.pop(0)
            os.close(old.fd)
            with contextlib.suppress(OSError):
                tail_segment_path(self.run_dir, old.index).unlink()
        return self._open_segment(index)

    def finish(self) -> tuple[int, int]:
        """Close the log: marker and trimmed tail appended to ``output.log``.

        Returns (log_bytes, dropped_bytes). Safe to call twice.
        """
        if self._finished:
            return self.log_bytes, self.dropped_bytes
        self._finished = True
        kept = [0, self.head_per_stream[1], self.head_per_stream[2]]
        if self._in_tail:
            tail_kept = self._append_tail()
            kept[1] += tail_kept[1]
            kept[2] += tail_kept[2]
        self.dropped_per_stream = [0, self.total[1] - kept[1], self.total[2] - kept[2]]
        if self._fd >= 0:
            os.close(self._fd)
        return self.log_bytes, self.dropped_bytes

    @property
    def dropped_bytes(self) -> int:
        d = getattr(self, "dropped_per_stream", None)
        if d is None:
            return 0
        return int(d[1] + d[2])

    def _append_tail(self) -> list[int]:
        segments, self._segments = self._segments, []
        for seg in segments:
            os.close(seg.fd)
        tail_total = sum(s.payload for s in segments)
        skip = max(0, tail_total - self.tail_budget)
        kept = [0, 0, 0]
        # First pass: which frames (or frame ends) survive the skip; second: copy them.
        frames_to_copy: list[tuple[Path, int, int, int, int, int]] = []
        for seg in segments:
            path = tail_segment_path(self.run_dir, seg.index)
            try:
                with path.open("rb") as f:
                    pos = 0
                    while True:
                        header = f.read(HEADER.size)
                        if len(header) < HEADER.size:
                            break
                        _kind, stream, t_us, length = HEADER.unpack(header)
                        start = pos + HEADER.size
                        cut = min(skip, length)
                        skip -= cut
                        if cut < length:
                            frames_to_copy.append(
                                (path, stream, t_us, start + cut, length - cut, seg.index)
                            )
                            kept[stream] += length - cut
                        f.seek(length, os.SEEK_CUR)
                        pos = start + length
            except OSError as exc:
                self.error = self.error or f"log tail unreadable: {exc.strerror or exc}"
        dropped = [0, self.total[1] - self.head_per_stream[1] - kept[1]]
        dropped.append(self.total[2] - self.head_per_stream[2] - kept[2])
        t_us = self._clock_ns() // 1000
        self._write(
            self.fd, [encode_dropped(t_us, dropped[1] + dropped[2], dropped[1], dropped[2])]
        )
        handles: dict[Path, int] = {}
        try:
            for path, stream, ft_us, start, length, _index in frames_to_copy:
                src = handles.get(path)
                if src is None:
                    src = handles[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                self._write(self.fd, [encode_header(Kind.DATA, Stream(stream), ft_us, length)])
                remaining, offset = length, start
                while remaining > 0 and not self.error:
                    chunk = os.pread(src, min(remaining, _COPY_CHUNK), offset)
                    if not chunk:
                        self.error = "log tail segment shrank while being copied"
                        break
                    self._write(self.fd, [chunk])
                    remaining -= len(chunk)
                    offset += len(chunk)
        except OSError as exc:
            self.error = self.error or f"log tail copy failed: {exc.strerror or exc}"
        finally:
            for fd in handles.values():
                os.close(fd)
            for seg in segments:
                with contextlib.suppress(OSError):
                    tail_segment_path(self.run_dir, seg.index).unlink()
        return kept

    def abandon(self) -> None:
        """Close file descriptors without finalising (the run dir is being given up)."""
        for seg in self._segments:
            with contextlib.suppress(OSError):
                os.close(seg.fd)
        self._segments = []
        if not self._finished:
            self._finished = True
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
