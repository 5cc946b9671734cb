"""Reading, following, archiving and retention of execution logs (real supervisor, real files)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import msgspec
import pytest

from agentd import logs
from agentd.supervisor import SupervisorClient
from agentd.supervisor.records import StartedFile
from shared.errors import UnknownExecution
from shared.logframe import Kind, Stream
from tests.agentd._supervisor_support import running_supervisor, sh, spec, wait_exit


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("logs")
    with running_supervisor(path):
        yield path


@pytest.fixture
async def sup(data_dir: Path):
    client = await SupervisorClient.connect(data_dir)
    yield client
    await client.close()


async def _run(sup, data_dir, argv, **kw):
    s = spec(data_dir, argv, **kw)
    await sup.start(s)
    return s, await wait_exit(sup, s.exec_id)


def _data(frames) -> bytes:
    return b"".join(f.data for f in frames if f.kind is Kind.DATA)


async def test_paging_with_offsets_reads_everything_once(sup, data_dir):
    """Reading page by page with next_offset returns every byte exactly once."""
    s, _ = await _run(sup, data_dir, sh("seq 1 20000"))
    got, offset, pages = b"", 0, 0
    while True:
        page = logs.read_log(data_dir, s.exec_id, offset=offset, limit=4096)
        got += _data(page.frames)
        offset, pages = page.next_offset, pages + 1
        if page.at_end:
            break
    assert got == b"".join(b"%d\n" % i for i in range(1, 20001))
    assert pages > 1 and page.is_finished


async def test_archive_compresses_and_offsets_stay_valid(sup, data_dir):
    """After archive the log is gzip'd, the plain file gone, and the same offsets read the same."""
    s, _ = await _run(sup, data_dir, sh("seq 1 5000; echo bye >&2"))
    first = logs.read_log(data_dir, s.exec_id, limit=100)
    rest_before = logs.read_log(data_dir, s.exec_id, offset=first.next_offset, limit=1 << 20)
    gz = logs.archive(Path(s.run_dir))
    assert gz.name == "output.log.gz" and not (Path(s.run_dir) / "output.log").exists()
    rest_after = logs.read_log(data_dir, s.exec_id, offset=first.next_offset, limit=1 << 20)
    assert rest_after.frames == rest_before.frames
    assert logs.archive(Path(s.run_dir)) == gz  # idempotent
    assert logs.tail_text(Path(s.run_dir), "stderr") == "bye\n"


async def test_archive_refuses_a_running_execution(sup, data_dir):
    """A live log cannot be archived: LogBusy names the run dir."""
    s = spec(data_dir, ["sleep", "30"])
    await sup.start(s)
    try:
        with pytest.raises(logs.LogBusy, match=s.exec_id):
            logs.archive(Path(s.run_dir))
    finally:
        await sup.cancel(s.exec_id)
        await wait_exit(sup, s.exec_id)


async def test_tail_text_returns_the_last_bytes_of_each_stream(sup, data_dir):
    """tail_text gives the last N bytes of the asked stream, decoded with replacement."""
    s, _ = await _run(sup, data_dir, sh("seq 1 3000; printf 'bad\\377end' >&2"))
    assert logs.tail_text(Path(s.run_dir), "stdout", 10) == "\n2999\n3000\n"[-10:]
    assert logs.tail_text(Path(s.run_dir), "stderr") == "bad\ufffdend"


async def test_tail_text_of_a_capped_log_is_the_real_end(sup, data_dir):
    """For a capped log the tail text is the end of the output, past the dropped middle."""
    s, _ = await _run(sup, data_dir, sh("seq 1 100000"), max_log_bytes=4000)
    assert logs.tail_text(Path(s.run_dir), "stdout", 7) == "100000\n"


async def test_follow_yields_frames_live_until_exit(sup, data_dir):
    """follow yields output while the job runs and stops after it ends."""
    s = spec(data_dir, sh("echo a; sleep 1; echo b >&2; sleep 1; echo c"))
    await sup.start(s)
    async with asyncio.timeout(30):
        seen = [
            (frame, time.time()) async for frame in logs.follow(data_dir, s.exec_id, poll_s=0.05)
        ]
    assert [(f.stream, f.data) for f, _ in seen] == [
        (Stream.STDOUT, b"a\n"),
        (Stream.STDERR, b"b\n"),
        (Stream.STDOUT, b"c\n"),
    ]
    # 'a' reached the follower before 'c' was even written: live, not all at the end.
    assert seen[0][1] < seen[2][0].t
    await wait_exit(sup, s.exec_id)


async def test_follow_continues_into_the_live_tail(sup, data_dir):
    """A job printing past its head keeps being followed through the tail segments."""
    script = "seq 1 2000; sleep 0.3; echo LAST-LINE"
    s = spec(data_dir, sh(script), max_log_bytes=1000)
    await sup.start(s)
    data = b""
    async with asyncio.timeout(20):
        async for frame in logs.follow(data_dir, s.exec_id, poll_s=0.05):
            data += frame.data if frame.kind is Kind.DATA else b""
    assert data.startswith(b"1\n2\n3\n") and data.endswith(b"LAST-LINE\n")
    await wait_exit(sup, s.exec_id)


def test_bad_exec_id_is_refused(tmp_path):
    """An execution id that is not a plain name (path traversal) is an unknown execution."""
    with pytest.raises(UnknownExecution):
        logs.read_log(tmp_path, "../etc")


def test_missing_log_is_unknown_execution(tmp_path):
    """Reading a log that does not exist says which execution is unknown."""
    with pytest.raises(UnknownExecution, match="NOPE"):
        logs.read_log(tmp_path, "NOPE")


def _fake_run(data_dir: Path, exec_id: str, finished_at: float | None, size: int) -> Path:
    run_dir = data_dir / "runs" / exec_id
    run_dir.mkdir(parents=True)
    (run_dir / "output.log.gz").write_bytes(os.urandom(size))
    if finished_at is not None:
        (run_dir / "exit.json").write_bytes(
            msgspec.json.encode(
                {"exec_id": exec_id, "outcome": "exited", "finished_at": finished_at}
            )
        )
    return run_dir


def test_retention_removes_by_age(tmp_path):
    """Finished runs older than max_age_s are removed, newer ones kept."""
    now = 1_000_000.0
    _fake_run(tmp_path, "OLD", now - 100, 100)
    _fake_run(tmp_path, "NEW", now - 10, 100)
    assert logs.apply_retention(tmp_path, max_age_s=50, max_total_bytes=None, now=now) == ["OLD"]
    assert sorted(os.listdir(tmp_path / "runs")) == ["NEW"]


def test_retention_removes_oldest_until_under_total(tmp_path):
    """Over the total size budget, the oldest finished runs go first."""
    now = 1_000_000.0
    for i in range(4):
        _fake_run(tmp_path, f"R{i}", now - 100 + i, 64 * 1024)
    removed = logs.apply_retention(tmp_path, max_age_s=None, max_total_bytes=150 * 1024, now=now)
    assert removed == ["R0", "R1"]


def test_retention_never_removes_running_or_unacked(tmp_path):
    """A run without exit.json, or whose exit is not yet acknowledged, is kept."""
    now = 1_000_000.0
    _fake_run(tmp_path, "RUNNING", None, 100)
    _fake_run(tmp_path, "UNACKED", now - 1000, 100)
    (tmp_path / "supervisor").mkdir()
    started = StartedFile(exec_id="UNACKED", pid=1, boot_id="b", start_ticks=1, started_at=now)
    (tmp_path / "supervisor" / "journal").write_bytes(b"S " + msgspec.json.encode(started) + b"\n")
    assert logs.apply_retention(tmp_path, max_age_s=1, max_total_bytes=0, now=now) == []


def test_retention_accepts_an_agent_config(tmp_path):
    """Given a config object, its data dir and log limits are used."""

    class Config:
        data_dir = tmp_path
        log_max_age_days = 1
        log_max_total_bytes = 1 << 30

    _fake_run(tmp_path, "OLD", time.time() - 3 * 86400, 10)
    assert logs.apply_retention(Config()) == ["OLD"]
