"""Job output: separable, ordered, timestamped, capped head + tail, any bytes, bounded memory."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import psutil
import pytest

from agentd.logs import read_log
from agentd.supervisor import SupervisorClient
from shared.logframe import Kind, Stream
from tests.agentd._supervisor_support import running_supervisor, sh, spec, wait_exit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("out")
    with running_supervisor(path) as pid:
        (path / "sup.pid").write_text(str(pid))
        yield path


@pytest.fixture
async def sup(data_dir: Path):
    client = await SupervisorClient.connect(data_dir)
    yield client
    await client.close()


async def _run(sup, data_dir, argv, **kw):
    s = spec(data_dir, argv, **kw)
    await sup.start(s)
    return s, await wait_exit(sup, s.exec_id, timeout_s=50)


def _all_frames(data_dir: Path, exec_id: str, stream: str | None = None):
    frames, offset = [], 0
    while True:
        page = read_log(data_dir, exec_id, stream=stream, offset=offset, limit=1 << 20)
        frames += page.frames
        offset = page.next_offset
        if page.at_end:
            return frames


async def test_streams_are_separable_ordered_and_timestamped(sup, data_dir):
    """stdout and stderr frames come back apart, in write order, with rising timestamps."""
    script = "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three"
    s, rec = await _run(sup, data_dir, sh(script))
    frames = [f for f in _all_frames(data_dir, s.exec_id) if f.kind is Kind.DATA]
    assert [(f.stream, f.data) for f in frames] == [
        (Stream.STDOUT, b"one\n"),
        (Stream.STDERR, b"two\n"),
        (Stream.STDOUT, b"three\n"),
    ]
    times = [f.t for f in frames]
    assert times == sorted(times) and rec.started_at <= times[0] <= rec.finished_at
    only_err = _all_frames(data_dir, s.exec_id, stream="stderr")
    assert [f.data for f in only_err] == [b"two\n"]


async def test_cap_keeps_head_and_tail_and_counts_dropped(sup, data_dir):
    """Past max_log_bytes the head and the tail are kept and the dropped bytes counted."""
    s, rec = await _run(sup, data_dir, sh("seq 1 100000"), max_log_bytes=2000)
    expected = b"".join(b"%d\n" % i for i in range(1, 100001))
    frames = _all_frames(data_dir, s.exec_id)
    head = b"".join(f.data for f in frames[: _marker_index(frames)] if f.kind is Kind.DATA)
    tail = b"".join(f.data for f in frames[_marker_index(frames) + 1 :])
    marker = frames[_marker_index(frames)]
    assert head == expected[:1000] and tail == expected[-1000:]
    assert rec.log_bytes == len(expected)
    assert rec.dropped_bytes == len(expected) - 2000 == marker.dropped[0] == marker.dropped[1]


def _marker_index(frames) -> int:
    return next(i for i, f in enumerate(frames) if f.kind is Kind.DROPPED)


async def test_long_line_and_binary_bytes_survive(sup, data_dir, tmp_path):
    """A 10 MB line without a newline, of random binary bytes, is stored byte for byte."""
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(10_000_000))
    s, rec = await _run(sup, data_dir, ["cat", str(src)], max_log_bytes=32 << 20)
    got = b"".join(f.data for f in _all_frames(data_dir, s.exec_id) if f.kind is Kind.DATA)
    assert hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert rec.dropped_bytes == 0 and rec.log_bytes == 10_000_000


async def test_large_output_keeps_memory_flat(sup, data_dir):
    """200 MB of output leaves the client's and the supervisor's RSS flat."""
    sup_proc = psutil.Process(int((data_dir / "sup.pid").read_text()))
    me = psutil.Process()
    before_me, before_sup = me.memory_info().rss, sup_proc.memory_info().rss
    s, rec = await _run(sup, data_dir, ["head", "-c", "200M", "/dev/zero"])
    assert rec.exit_code == 0 and rec.log_bytes == 200 << 20
    assert rec.dropped_bytes == (200 << 20) - s.max_log_bytes
    assert me.memory_info().rss - before_me < 20 << 20
    assert sup_proc.memory_info().rss - before_sup < 20 << 20
    # The log on disk holds the cap, not the output.
    assert (Path(s.run_dir) / "output.log").stat().st_size < s.max_log_bytes + (1 << 20)


async def test_interleaved_writers_keep_each_stream_intact(sup, data_dir):
    """Both streams written fast and interleaved: each stream's bytes are exact and complete."""
    script = "i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"
    s, _ = await _run(sup, data_dir, sh(script))
    frames = _all_frames(data_dir, s.exec_id)
    out = b"".join(f.data for f in frames if f.stream is Stream.STDOUT)
    err = b"".join(f.data for f in frames if f.stream is Stream.STDERR)
    assert out == b"".join(b"out%d\n" % i for i in range(2000))
    assert err == b"".join(b"err%d\n" % i for i in range(2000))


async def test_dropped_bytes_are_counted_per_stream(sup, data_dir):
    """With both streams over the cap, the marker splits the dropped bytes by stream."""
    script = "seq 1 20000; seq 1 20000 >&2"
    s, rec = await _run(sup, data_dir, sh(script), max_log_bytes=4000)
    frames = _all_frames(data_dir, s.exec_id)
    total, out, err = frames[_marker_index(frames)].dropped
    kept_out = sum(len(f.data) for f in frames if f.stream is Stream.STDOUT)
    kept_err = sum(len(f.data) for f in frames if f.stream is Stream.STDERR)
    one = len(b"".join(b"%d\n" % i for i in range(1, 20001)))
    assert (kept_out + out, kept_err + err) == (one, one)
    assert total == out + err == rec.dropped_bytes == 2 * one - 4000


@pytest.mark.slow
async def test_one_gib_of_output_keeps_memory_flat(sup, data_dir):
    """1 GiB of output: agent and supervisor RSS grow by less than 20 MB (issue 8 goal)."""
    sup_proc = psutil.Process(int((data_dir / "sup.pid").read_text()))
    me = psutil.Process()
    before_me, before_sup = me.memory_info().rss, sup_proc.memory_info().rss
    s, rec = await _run(sup, data_dir, ["head", "-c", "1G", "/dev/zero"])
    assert rec.log_bytes == 1 << 30 and rec.dropped_bytes == (1 << 30) - s.max_log_bytes
    assert me.memory_info().rss - before_me < 20 << 20
    assert sup_proc.memory_info().rss - before_sup < 20 << 20


@pytest.mark.slow
async def test_two_hundred_sleeping_jobs_cost_little_memory(sup, data_dir):
    """200 running jobs add well under 3 MB each to the supervisor (issue 8 goal)."""
    sup_proc = psutil.Process(int((data_dir / "sup.pid").read_text()))
    before = sup_proc.memory_info().rss
    specs = [spec(data_dir, ["sleep", "60"]) for _ in range(200)]
    for s in specs:
        await sup.start(s)
    grown = sup_proc.memory_info().rss - before
    for s in specs:
        await sup.cancel(s.exec_id)
    waiting = {s.exec_id for s in specs}
    async with asyncio.timeout(50):
        async for rec in sup.exits():
            await sup.ack(rec.exec_id)
            waiting.discard(rec.exec_id)
            if not waiting:
                break
    assert grown / 200 < 3 << 20
