"""Execution logs on disk: reading, following, archiving and retention.

The supervisor writes each execution's output as frames (``shared.logframe``)
into ``DATA/runs/<exec_id>/output.log``: the head, and once the job ends a
``DROPPED`` marker and the tail (see ``agentd.supervisor.capture``). While a
long-printing job runs, its tail lives in ``tail-<n>.log`` segments. After the
agent has recorded the exit, ``archive`` compresses the log to
``output.log.gz``; offsets are the same in both (they count bytes of the
uncompressed file), so a reader paging through a log never notices.

Job output is hostile: everything here returns bytes, except ``tail_text``,
which decodes with replacement for the database's quick view. Nothing here
holds more than ``limit`` (or one frame, at most 1 MiB) in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import os
import re
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from agentd.supervisor.journal import read_journal
from shared.errors import SquError, UnknownExecution
from shared.logframe import HEADER, MAGIC, Frame, FrameDecoder, Kind, Stream

__all__ = [
    "ARCHIVE_NAME",
    "LOG_NAME",
    "LogBusy",
    "LogSlice",
    "apply_retention",
    "archive",
    "follow",
    "read_log",
    "run_dir_of",
    "tail_text",
]

LOG_NAME = "output.log"
ARCHIVE_NAME = "output.log.gz"
_SEGMENT = re.compile(r"tail-(\d{6})\.log\Z")
_EXEC_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_CHUNK = 1024 * 1024
_STREAMS = {"stdout": Stream.STDOUT, "stderr": Stream.STDERR}


class LogBusy(SquError):
    code = "log_busy"

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"the execution in {run_dir} has not finished; its log is still open")


@dataclass(frozen=True, slots=True)
class LogSlice:
    """Frames from ``offset`` up to about ``limit`` payload bytes.

    ``frames`` holds ``DATA`` frames and the ``DROPPED`` marker (whose
    ``.dropped`` gives the byte counts). ``next_offset`` continues the read;
    ``at_end`` says nothing more is on disk now; ``is_finished`` that the
    execution has ended, so nothing more will come.
    """

    frames: list[Frame]
    next_offset: int
    at_end: bool
    is_finished: bool
    dropped_bytes: int


def run_dir_of(data_dir: Path, exec_id: str) -> Path:
    """``DATA/runs/<exec_id>``; an id that is not a plain name is refused (no ``..``)."""
    if not _EXEC_ID.match(exec_id):
        raise UnknownExecution(exec_id)
    return Path(data_dir) / "runs" / exec_id


def _stream_filter(stream: str | None) -> Stream | None:
    if stream is None:
        return None
    try:
        return _STREAMS[stream]
    except KeyError:
        raise SquError(f"unknown stream {stream!r}: use stdout or stderr", stream=stream) from None


def _open_log(run_dir: Path) -> IO[bytes]:
    """The log as a binary file positioned after ``MAGIC``: plain while fresh, else the archive."""
    try:
        f: IO[bytes] = open(run_dir / LOG_NAME, "rb")
    except FileNotFoundError:
        try:
            f = gzip.open(run_dir / ARCHIVE_NAME, "rb")
        except FileNotFoundError:
            if run_dir.is_dir():
                return io.BytesIO(MAGIC)  # the job has printed nothing (yet)
            raise UnknownExecution(run_dir.name) from None
    head = f.read(len(MAGIC))
    if head != MAGIC:
        f.close()
        if MAGIC.startswith(head):
            return io.BytesIO(MAGIC)  # created this instant, magic not yet written
        raise SquError(f"{run_dir}: not a squ-cron log", run_dir=str(run_dir))
    return f


def _open_binary(path: Path) -> IO[bytes]:
    # Kept open while following: a rotated-away segment stays readable.
    return open(path, "rb")


def _read_frame(f: IO[bytes], want_payload: bool) -> tuple[int, int, int, int, bytes | None] | None:
    """(kind, stream, t_us, length, payload or None) of the next complete frame, or None."""
    start = f.tell()
    header = f.read(HEADER.size)
    if len(header) < HEADER.size:
        f.seek(start)
        return None
    kind, stream, t_us, length = HEADER.unpack(header)
    if want_payload:
        data = f.read(length)
        if len(data) < length:
            f.seek(start)  # a frame still being written: read it whole next time
            return None
        return kind, stream, t_us, length, data
    f.seek(length, os.SEEK_CUR)
    return kind, stream, t_us, length, None


def read_log(
    data_dir: Path,
    exec_id: str,
    *,
    stream: str | None = None,
    offset: int = 0,
    limit: int = 256 * 1024,
) -> LogSlice:
    """A page of the log of ``exec_id``; ``stream`` is None (both), "stdout" or "stderr".

    While the job runs this covers the head; output beyond the head shows in
    ``follow`` and ``tail_text`` live, and here once the job has ended.
    """
    run_dir = run_dir_of(data_dir, exec_id)
    only = _stream_filter(stream)
    frames: list[Frame] = []
    got = 0
    dropped = 0
    with _open_log(run_dir) as f:
        pos = max(offset, len(MAGIC))
        f.seek(pos)
        at_end = False
        while got < limit:
            peek = f.read(HEADER.size)
            if len(peek) < HEADER.size:
                at_end = True
                break
            kind, strm, t_us, length = HEADER.unpack(peek)
            wanted = kind == Kind.DROPPED or (kind == Kind.DATA and only in (None, strm))
            if wanted:
                data = f.read(length)
                if len(data) < length:
                    at_end = True  # a frame still being written
                    break
                frame = Frame(Kind(kind), Stream(strm), t_us, data)
                frames.append(frame)
                if kind == Kind.DROPPED:
                    dropped = frame.dropped[0]
                else:
                    got += length
            else:
                f.seek(length, os.SEEK_CUR)
            pos += HEADER.size + length
    return LogSlice(
        frames=frames,
        next_offset=pos,
        at_end=at_end,
        is_finished=(run_dir / "exit.json").exists(),
        dropped_bytes=dropped,
    )


def _segments(run_dir: Path) -> list[tuple[int, Path]]:
    try:
        names = os.listdir(run_dir)
    except OSError:
        return []
    found = [(int(m.group(1)), run_dir / n) for n in names if (m := _SEGMENT.match(n))]
    return sorted(found)


def tail_text(run_dir: Path, stream: str, max_bytes: int = 4096) -> str:
    """The last ``max_bytes`` of one stream as text (invalid UTF-8 replaced), live or finished."""
    want = _STREAMS.get(stream)
    if want is None:
        raise SquError(f"unknown stream {stream!r}: use stdout or stderr", stream=stream)
    # (file, payload offset, length) of the stream's frames, newest last; bounded list.
    spans: list[tuple[Path, int, int]] = []
    kept = 0

    def scan(path: Path, f: IO[bytes], start: int) -> None:
        nonlocal kept
        pos = start
        f.seek(pos)
        while (frame := _read_frame(f, want_payload=False)) is not None:
            kind, strm, _t, length = (
                frame[0],
                frame[1],
                frame[2],
                HEADER.unpack(b"\0" * 0 or b"\0" * 14)[3],
            )
            pos_payload = pos + HEADER.size
            length = f.tell() - pos_payload
            if kind == Kind.DATA and strm == want and length:
                spans.append((path, pos_payload, length))
                kept += length
                while spans and kept - spans[0][2] >= max_bytes:
                    kept -= spans.pop(0)[2]
            pos = f.tell()

    plain = run_dir / LOG_NAME
    is_gz = not plain.exists()
    with _open_log(run_dir) as f:
        scan(plain, f, len(MAGIC))
        if is_gz:
            return _join_spans(spans, f, max_bytes)
    for _index, seg in _segments(run_dir):
        with contextlib.suppress(OSError), open(seg, "rb") as sf:
            scan(seg, sf, 0)
    out = bytearray()
    for path, start, length in spans:
        with contextlib.suppress(OSError), open(path, "rb") as f2:
            f2.seek(start)
            out += f2.read(length)
    return bytes(out[-max_bytes:]).decode("utf-8", "replace")


def _join_spans(spans: list[tuple[Path, int, int]], f: IO[bytes], max_bytes: int) -> str:
    out = bytearray()
    for _path, start, length in spans:
        f.seek(start)
        out += f.read(length)
    return bytes(out[-max_bytes:]).decode("utf-8", "replace")


async def follow(
    data_dir: Path, exec_id: str, *, offset: int = 0, poll_s: float = 0.2
) -> AsyncIterator[Frame]:
    """Yield the log's frames from ``offset`` as they are written, until the execution ends.

    While a job prints past its head, the live tail segments are followed; a
    follower slower than the tail's rotation skips what was dropped anyway.
    """
    run_dir = run_dir_of(data_dir, exec_id)
    exit_path = run_dir / "exit.json"
    pos = max(offset, len(MAGIC))
    head_end_at: int | None = None  # offset just after HEAD_END, when seen
    seg_file: IO[bytes] | None = None
    seg_index = 0
    seg_decoder = FrameDecoder()
    # After following the live tail, the finalised tail repeats what we showed:
    # skip frames up to the last one yielded (by time, then by identity).
    last_t_us = -1
    seen_at_last: set[tuple[int, bytes]] = set()
    skip_until_new = False

    def note(frame: Frame) -> None:
        nonlocal last_t_us
        if frame.kind is not Kind.DATA:
            return  # markers carry the finalisation time, not the output's
        if frame.t_us != last_t_us:
            last_t_us = frame.t_us
            seen_at_last.clear()
        seen_at_last.add((frame.stream, frame.data))

    def is_repeat(frame: Frame) -> bool:
        return frame.t_us < last_t_us or (
            frame.t_us == last_t_us and (frame.stream, frame.data) in seen_at_last
        )

    try:
        while True:
            finished = exit_path.exists()
            progressed = False
            if seg_file is None:
                with _open_log(run_dir) as f:
                    f.seek(pos)
                    while (fr := _read_frame(f, want_payload=True)) is not None:
                        kind, strm, t_us, _length, data = fr
                        pos = f.tell()
                        progressed = True
                        if kind == Kind.HEAD_END:
                            head_end_at = pos
                            continue
                        frame = Frame(Kind(kind), Stream(strm), t_us, data or b"")
                        if skip_until_new and kind == Kind.DATA and is_repeat(frame):
                            continue
                        note(frame)
                        yield frame
                if head_end_at is not None and head_end_at == pos and not finished:
                    segs = _segments(run_dir)
                    if segs:
                        seg_index, path = segs[0]
                        with contextlib.suppress(OSError):
                            seg_file = _open_binary(path)
                            seg_decoder = FrameDecoder()
            else:
                chunk = seg_file.read(_CHUNK)
                if chunk:
                    progressed = True
                    for frame in seg_decoder.feed(chunk):
                        note(frame)
                        yield frame
                    continue
                segs = _segments(run_dir)
                newer = [sg for sg in segs if sg[0] > seg_index]
                if newer or not segs:
                    # Rotated (or finalised): what the writer added before moving on
                    # is in this file already; read it to the end first.
                    while rest := seg_file.read(_CHUNK):
                        for frame in seg_decoder.feed(rest):
                            note(frame)
                            yield frame
                    seg_file.close()
                    seg_file = None
                    progressed = True
                    if newer:
                        seg_index, path = newer[0]
                        with contextlib.suppress(OSError):
                            seg_file = _open_binary(path)
                            seg_decoder = FrameDecoder()
                    else:
                        # Finalised: the tail now lives in output.log after HEAD_END;
                        # read it from there, skipping what we already showed.
                        skip_until_new = True
            if finished and not progressed:
                return
            if not progressed:
                await asyncio.sleep(poll_s)
    finally:
        if seg_file is not None:
            seg_file.close()


def archive(run_dir: Path) -> Path:
    """Compress a finished execution's log to ``output.log.gz``; idempotent.

    Returns the archive's path, or the run dir itself when the job printed
    nothing (there is no log file then). Raises ``LogBusy`` while the execution
    runs. Leftover tail segments (of an execution that was lost mid-run) are removed.
    """
    run_dir = Path(run_dir)
    plain, gz = run_dir / LOG_NAME, run_dir / ARCHIVE_NAME
    if not (run_dir / "exit.json").exists():
        raise LogBusy(run_dir)
    if plain.exists():
        tmp = run_dir / f".{ARCHIVE_NAME}.tmp"
        with open(plain, "rb") as src, open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as out:
                shutil.copyfileobj(src, out, _CHUNK)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, gz)
        _fsync_dir(run_dir)
        plain.unlink()
    for _index, seg in _segments(run_dir):
        with contextlib.suppress(OSError):
            seg.unlink()
    if not gz.exists():
        if run_dir.is_dir():
            return run_dir
        raise UnknownExecution(run_dir.name)
    return gz


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Finished(msgspec.Struct):
    finished_at: float = 0.0


def _dir_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(OSError), os.scandir(path) as it:
        for entry in it:
            with contextlib.suppress(OSError):
                total += entry.stat(follow_symlinks=False).st_blocks * 512
    return total


def apply_retention(
    data_dir: Path | Any,
    max_age_s: float | None = None,
    max_total_bytes: int | None = None,
    now: float | None = None,
) -> list[str]:
    """Remove finished executions' run dirs older than ``max_age_s``, then the oldest ones
    until all run dirs together take at most ``max_total_bytes``. Returns the ids removed.

    Never touches a running execution or one whose exit the agent has not yet
    acknowledged. ``data_dir`` may also be an ``AgentConfig`` (its data dir,
    ``log_max_age_days`` and ``log_max_total_bytes`` are used).
    """
    if not isinstance(data_dir, (str, os.PathLike)):
        config = data_dir
        data_dir = config.data_dir
        if max_age_s is None:
            max_age_s = float(config.log_max_age_days) * 86400
        if max_total_bytes is None:
            max_total_bytes = int(config.log_max_total_bytes)
    now = time.time() if now is None else now
    runs_dir = Path(data_dir) / "runs"
    # Exits the agent has not acknowledged yet are still owed to it: never removed.
    unacked = set(read_journal(Path(data_dir) / "supervisor" / "journal"))
    finished: list[tuple[float, str, Path, int]] = []
    total = 0
    try:
        entries = list(os.scandir(runs_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        size = _dir_bytes(path)
        total += size
        exit_path = path / "exit.json"
        if not exit_path.exists() or entry.name in unacked:
            continue
        try:
            at = msgspec.json.decode(exit_path.read_bytes(), type=_Finished).finished_at
        except (OSError, msgspec.DecodeError):
            at = 0.0
        finished.append((at or exit_path.stat().st_mtime, entry.name, path, size))
    finished.sort()
    removed: list[str] = []
    for at, name, path, size in finished:
        too_old = max_age_s is not None and at < now - max_age_s
        too_big = max_total_bytes is not None and total > max_total_bytes
        if not (too_old or too_big):
            continue
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        removed.append(name)
    return removed
