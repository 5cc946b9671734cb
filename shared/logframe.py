"""The on-disk format of an execution's log: frames, pure encode/decode.

A log file is ``MAGIC`` followed by frames. Each frame is a 14-byte header
(kind, stream, time in microseconds since the epoch, payload length; big-endian)
and its payload. Frames keep stdout and stderr separable and in the order the
supervisor read them, with the time each chunk was read (DESIGN.md: logs).

Kinds:

* ``DATA``: bytes the job wrote on ``stream`` (stored as bytes, never decoded).
* ``HEAD_END``: the head budget is full; while the job runs, further output goes
  to tail segment files (``tail-<n>.log``, frames without ``MAGIC``).
* ``DROPPED``: written once when the log is finalised; the payload holds how many
  bytes were dropped between head and tail: total, stdout, stderr.

Decoding never raises on a truncated end (an incomplete frame is left for the
next read, which is what a live follower needs); it raises ``CorruptLog`` on a
header that cannot be ours, naming the offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from shared.errors import SquError

__all__ = [
    "HEADER",
    "MAGIC",
    "MAX_FRAME_BYTES",
    "CorruptLog",
    "Frame",
    "FrameDecoder",
    "Kind",
    "Stream",
    "decode_frames",
    "encode_dropped",
    "encode_frame",
    "encode_header",
]

MAGIC = b"SQULOG1\n"
HEADER = struct.Struct(">BBQI")
_DROPPED = struct.Struct(">QQQ")
# The writer never makes a frame bigger than its read buffer (1 MiB); anything
# far larger is corruption, not a frame, so a reader never allocates for it.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class Stream(IntEnum):
    NONE = 0
    STDOUT = 1
    STDERR = 2


class Kind(IntEnum):
    DATA = 1
    HEAD_END = 2
    DROPPED = 3


class CorruptLog(SquError):
    """A log file whose bytes are not frames; names the offset where it stopped making sense."""

    code = "corrupt_log"

    def __init__(self, offset: int, why: str) -> None:
        super().__init__(f"log is corrupt at byte {offset}: {why}", offset=offset, why=why)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. ``data`` is the raw payload (bytes the job wrote, or a marker)."""

    kind: Kind
    stream: Stream
    t_us: int
    data: bytes

    @property
    def t(self) -> float:
        """The frame's time in seconds since the epoch."""
        return self.t_us / 1_000_000

    @property
    def dropped(self) -> tuple[int, int, int]:
        """For a ``DROPPED`` marker: (total, stdout, stderr) bytes dropped; zeros otherwise."""
        if self.kind is not Kind.DROPPED or len(self.data) != _DROPPED.size:
            return (0, 0, 0)
        total, out, err = _DROPPED.unpack(self.data)
        return (int(total), int(out), int(err))


def encode_header(kind: Kind, stream: Stream, t_us: int, length: int) -> bytes:
    """The header for a frame whose payload (``length`` bytes) the caller writes next."""
    if not 0 <= length <= MAX_FRAME_BYTES:
        raise ValueError(f"frame payload of {length} bytes is out of range")
    return HEADER.pack(kind, stream, t_us, length)


def encode_frame(kind: Kind, stream: Stream, t_us: int, data: bytes) -> bytes:
    """A whole frame: header and payload."""
    return encode_header(kind, stream, t_us, len(data)) + data


def encode_dropped(t_us: int, total: int, stdout: int, stderr: int) -> bytes:
    """The ``DROPPED`` marker frame placed between the kept head and tail."""
    return encode_frame(Kind.DROPPED, Stream.NONE, t_us, _DROPPED.pack(total, stdout, stderr))


def _check_header(kind: int, stream: int, length: int, offset: int) -> None:
    if kind not in _KINDS:
        raise CorruptLog(offset, f"unknown frame kind {kind}")
    if stream not in _STREAMS:
        raise CorruptLog(offset, f"unknown stream {stream}")
    if length > MAX_FRAME_BYTES:
        raise CorruptLog(offset, f"frame of {length} bytes is larger than any writer makes")


_KINDS = frozenset(int(k) for k in Kind)
_STREAMS = frozenset(int(s) for s in Stream)


def decode_frames(data: bytes, offset: int = 0) -> tuple[list[Frame], int]:
    """The complete frames in ``data`` from ``offset``, and the offset after the last one.

    ``data`` holds frames only (skip ``MAGIC`` first). Bytes of an incomplete
    final frame are left unconsumed.
    """
    frames: list[Frame] = []
    view = memoryview(data)
    pos = offset
    while pos + HEADER.size <= len(data):
        kind, stream, t_us, length = HEADER.unpack_from(data, pos)
        _check_header(kind, stream, length, pos)
        end = pos + HEADER.size + length
        if end > len(data):
            break
        frames.append(Frame(Kind(kind), Stream(stream), t_us, bytes(view[pos + HEADER.size : end])))
        pos = end
    return frames, pos


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they are read, get complete frames back."""

    def __init__(self, offset: int = 0) -> None:
        self._buffer = bytearray()
        # Offset in the file of the first byte in the buffer, for error messages.
        self._offset = offset

    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data``; raises ``CorruptLog`` on a header that is not ours."""
        self._buffer += data
        frames, used = decode_frames(bytes(self._buffer)) if self._buffer else ([], 0)
        del self._buffer[:used]
        self._offset += used
        return frames

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buffer)
