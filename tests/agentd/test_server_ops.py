"""StoreOps pieces that need no socket: log paging cursor, scripts store."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentd.server.ops_store import _read_log_slice
from agentd.server.scripts import InvalidScript, ScriptStore, UnknownScript
from shared.logframe import MAGIC, Kind, Stream, encode_dropped, encode_frame


def write_log(data_dir: Path, frames: list[bytes], done: bool = False) -> None:
    run_dir = data_dir / "runs" / "01EXEC"
    run_dir.mkdir(parents=True)
    (run_dir / "output.log").write_bytes(MAGIC + b"".join(frames))
    if done:
        (run_dir / "exit.json").write_text("{}")


def page_all(data_dir: Path, limit: int, stream: str | None = None) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    offset = skip = 0
    for _ in range(5000):
        page = _read_log_slice(data_dir, "01EXEC", stream, offset, limit, skip)
        assert sum(len(p.data) for p in page.pieces) <= limit
        got += [(p.stream, p.data) for p in page.pieces]
        offset, skip = page.next_offset, page.next_skip
        if page.eof:
            return got
    raise AssertionError("paging did not end")


def joined(pieces: list[tuple[str, bytes]], stream: str) -> bytes:
    return b"".join(d for s, d in pieces if s == stream)


@pytest.mark.parametrize("limit", [5, 100, 4096, 10**6])
def test_paging_delivers_every_byte_once(tmp_path: Path, limit: int) -> None:
    """Whatever the chunk size, paging returns each stream's bytes exactly, in order."""
    out = [bytes([i]) * (50 + i * 37) for i in range(12)]
    err = [b"E%d\n" % i for i in range(12)]
    frames = []
    for o, e in zip(out, err, strict=True):
        frames += [
            encode_frame(Kind.DATA, Stream.STDOUT, 1, o),
            encode_frame(Kind.DATA, Stream.STDERR, 2, e),
        ]
    write_log(tmp_path, frames, done=True)
    got = page_all(tmp_path, limit)
    assert joined(got, "stdout") == b"".join(out) and joined(got, "stderr") == b"".join(err)


def test_paging_one_stream_skips_the_other(tmp_path: Path) -> None:
    """With stream='stderr' only stderr bytes come back, split frames included."""
    frames = [
        encode_frame(Kind.DATA, Stream.STDERR, 1, b"a" * 300),
        encode_frame(Kind.DATA, Stream.STDOUT, 1, b"o" * 300),
        encode_frame(Kind.DATA, Stream.STDERR, 1, b"b" * 300),
    ]
    write_log(tmp_path, frames)
    got = page_all(tmp_path, 128, stream="stderr")
    assert {s for s, _ in got} == {"stderr"} and joined(got, "stderr") == b"a" * 300 + b"b" * 300


def test_dropped_marker_is_reported(tmp_path: Path) -> None:
    """A finished log's DROPPED marker shows as dropped_bytes."""
    frames = [
        encode_frame(Kind.DATA, Stream.STDOUT, 1, b"head"),
        encode_dropped(2, 5000, 4000, 1000),
        encode_frame(Kind.DATA, Stream.STDOUT, 3, b"tail"),
    ]
    write_log(tmp_path, frames, done=True)
    page = _read_log_slice(tmp_path, "01EXEC", None, 0, 10_000, 0)
    assert page.dropped_bytes == 5000 and page.complete and page.eof


def test_partial_frame_is_left_for_later(tmp_path: Path) -> None:
    """A frame still being written is not returned; the cursor stops before it."""
    whole = encode_frame(Kind.DATA, Stream.STDOUT, 1, b"done\n")
    partial = encode_frame(Kind.DATA, Stream.STDOUT, 1, b"half written")[:-4]
    write_log(tmp_path, [whole, partial])
    page = _read_log_slice(tmp_path, "01EXEC", None, 0, 10_000, 0)
    assert [p.data for p in page.pieces] == [b"done\n"]
    assert page.next_offset == len(MAGIC) + len(whole) and page.eof and not page.complete


def test_script_store_put_get_list(tmp_path: Path) -> None:
    """A script version is stored once by hash, found by ref or name, and listed."""
    scripts = ScriptStore(tmp_path)
    one = scripts.put("rotate", "echo 1\n", "/bin/sh", "alice", 1.0)
    two = scripts.put("rotate", "echo 2\n", "/bin/sh", "bob", 2.0)
    assert scripts.put("rotate", "echo 1\n", "/bin/sh", "carol", 3.0) == one
    assert scripts.get(one.ref).content == "echo 1\n"
    assert scripts.resolve("rotate") == two
    assert scripts.list_all() == [one, two]
    assert scripts.content_path(two.ref).read_bytes() == b"echo 2\n"


@pytest.mark.parametrize(
    ("name", "interpreter", "why"),
    [("../etc", "/bin/sh", "script name"), ("ok", "sh", "absolute path")],
)
def test_script_store_refuses_bad_input(
    tmp_path: Path, name: str, interpreter: str, why: str
) -> None:
    """Names that could escape the directory and relative interpreters are refused."""
    with pytest.raises(InvalidScript, match=why):
        ScriptStore(tmp_path).put(name, "x", interpreter, "a", 1.0)


def test_script_store_unknown_ref(tmp_path: Path) -> None:
    """An unknown or malformed ref is UnknownScript, never a path lookup."""
    scripts = ScriptStore(tmp_path)
    for ref in ("nothing", "../../etc/passwd", "x@sha256:" + "0" * 64):
        with pytest.raises(UnknownScript):
            scripts.get(ref)
