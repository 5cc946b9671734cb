"""The supervisor runs jobs: exit status, timeouts, cancel, containment, process set-up."""

from __future__ import annotations

import os
import pwd
import signal
import time
from pathlib import Path

import psutil
import pytest

from agentd.logs import tail_text
from agentd.supervisor import DiskFull, ExitRecord, Started, SupervisorClient, read_exit_record
from tests.agentd._supervisor_support import (
    pid_gone,
    run,
    running_supervisor,
    sh,
    spec,
    wait_exit,
    wait_for,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("sup")
    with running_supervisor(path):
        yield path


@pytest.fixture
async def sup(data_dir: Path):
    client = await SupervisorClient.connect(data_dir)
    yield client
    await client.close()


def _read_pid(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip() != "", what=str(path))
    return int(path.read_text())


async def test_exit_code_is_recorded(sup, data_dir):
    """A job's exit code comes back in an 'exited' record with start, end and CPU time."""
    rec = await run(sup, data_dir, sh("exit 3"))
    assert (rec.outcome, rec.exit_code, rec.signal) == ("exited", 3, None)
    assert rec.started_at is not None and rec.finished_at >= rec.started_at
    assert rec.cpu_time_s is not None and rec.cpu_time_s >= 0


async def test_death_by_signal_is_recorded(sup, data_dir):
    """A job killed by a signal reports the signal and no exit code."""
    rec = await run(sup, data_dir, sh("kill -USR1 $$"))
    assert (rec.outcome, rec.exit_code, rec.signal) == ("exited", None, signal.SIGUSR1)


async def test_exit_json_is_the_durable_record(sup, data_dir):
    """exit.json in the run dir holds the same record that was pushed."""
    s = spec(data_dir, sh("exit 5"))
    await sup.start(s)
    rec = await wait_exit(sup, s.exec_id)
    assert read_exit_record(Path(s.run_dir)) == rec


async def test_timeout_kills_a_job_that_ignores_sigterm(sup, data_dir):
    """After the timeout and the grace period, a job that traps SIGTERM gets SIGKILL."""
    t0 = time.monotonic()
    rec = await run(
        sup,
        data_dir,
        sh("trap '' TERM; while :; do sleep 0.1; done"),
        timeout_s=0.3,
        kill_grace_s=0.5,
    )
    assert (rec.outcome, rec.signal) == ("timeout", signal.SIGKILL)
    assert 0.75 <= time.monotonic() - t0 < 10


async def test_timeout_sigterm_ends_a_cooperative_job(sup, data_dir):
    """A job that honours SIGTERM ends with it and is not SIGKILLed."""
    rec = await run(sup, data_dir, ["sleep", "30"], timeout_s=0.2, kill_grace_s=5)
    assert (rec.outcome, rec.signal) == ("timeout", signal.SIGTERM)


async def test_timeout_kills_an_escaped_setsid_grandchild(sup, data_dir, tmp_path):
    """A grandchild that left the job's session is found and killed; none is left behind."""
    pidfile = tmp_path / "gc.pid"
    script = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' & sleep 60"
    s = spec(data_dir, sh(script), timeout_s=0.5, kill_grace_s=0.5)
    await sup.start(s)
    gc = _read_pid(pidfile)
    rec = await wait_exit(sup, s.exec_id)
    assert rec.outcome == "timeout"
    assert gc in rec.leftovers
    assert pid_gone(gc)


async def test_cancel_stops_the_whole_job(sup, data_dir, tmp_path):
    """Cancel ends the job and its children; the record says 'cancelled'."""
    pidfile = tmp_path / "child.pid"
    s = spec(data_dir, sh(f"sleep 60 & echo $! > {pidfile}; wait"))
    started = await sup.start(s)
    child = _read_pid(pidfile)
    assert await sup.cancel(s.exec_id) == "cancelling"
    rec = await wait_exit(sup, s.exec_id)
    assert rec.outcome == "cancelled"
    assert pid_gone(started.pid) and pid_gone(child)


async def test_leftovers_of_a_finished_job_are_killed_and_reported(sup, data_dir, tmp_path):
    """A background process still running when the job exits is killed and listed."""
    pidfile = tmp_path / "bg.pid"
    rec = await run(sup, data_dir, sh(f"setsid sleep 60 >/dev/null 2>&1 & echo $! > {pidfile}"))
    bg = _read_pid(pidfile)
    assert rec.outcome == "exited" and rec.exit_code == 0
    assert bg in rec.leftovers
    assert pid_gone(bg)


async def test_missing_command_is_a_spawn_failed_record(sup, data_dir):
    """A command that does not exist yields a 'spawn_failed' record naming it, not an exception."""
    s = spec(data_dir, ["/no/such/command"])
    rec = await sup.start(s)
    assert isinstance(rec, ExitRecord)
    assert rec.outcome == "spawn_failed" and "/no/such/command" in rec.error
    assert (await wait_exit(sup, s.exec_id)).outcome == "spawn_failed"


async def test_missing_working_dir_is_a_spawn_failed_record(sup, data_dir):
    """A working directory that does not exist is named in the spawn_failed record."""
    rec = await sup.start(spec(data_dir, ["true"], cwd="/no/such/dir"))
    assert isinstance(rec, ExitRecord)
    assert rec.outcome == "spawn_failed" and "/no/such/dir" in rec.error


async def test_same_exec_id_never_runs_twice(sup, data_dir, tmp_path):
    """Starting an execution id again returns the first run's record and runs nothing."""
    counter = tmp_path / "count"
    s = spec(data_dir, sh(f"echo x >> {counter}"))
    await sup.start(s)
    first = await wait_exit(sup, s.exec_id)
    again = await sup.start(s)
    assert again == first
    assert counter.read_text() == "x\n"


async def test_disk_below_minimum_refuses_to_start(sup, data_dir):
    """With less free space than required, start raises DiskFull and runs nothing."""
    s = spec(data_dir, ["true"], min_free_bytes=1 << 62)
    with pytest.raises(DiskFull, match="MiB free"):
        await sup.start(s)
    assert read_exit_record(Path(s.run_dir)) is None


async def test_environment_is_exactly_the_spec(sup, data_dir, tmp_path):
    """The job sees only the env it was given (nothing of the supervisor's)."""
    out = tmp_path / "env"
    env = {"PATH": "/usr/bin:/bin", "FOO": "bar baz", "SQU_EXECUTION_ID": "x"}
    rec = await run(sup, data_dir, ["/usr/bin/env"], env=env, cwd=str(tmp_path))
    assert rec.exit_code == 0
    s = spec(data_dir, sh(f"env > {out}"), env=env)
    await sup.start(s)
    await wait_exit(sup, s.exec_id)
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines())
    seen.pop("PWD", None)  # dash sets it
    assert seen == env


async def test_stdin_is_dev_null_and_no_fd_leaks(sup, data_dir):
    """stdin reads EOF at once and the job has only fds 0, 1 and 2 open."""
    s = spec(data_dir, sh("cat; readlink /proc/$$/fd/0; ls /proc/$$/fd"), timeout_s=10)
    await sup.start(s)
    rec = await wait_exit(sup, s.exec_id)
    assert rec.outcome == "exited" and rec.exit_code == 0
    lines = tail_text(Path(s.run_dir), "stdout").split()
    assert lines[0] == "/dev/null"
    assert sorted(lines[1:]) == ["0", "1", "2"]


async def test_working_dir_is_used(sup, data_dir, tmp_path):
    """The job starts in the working dir it was given."""
    out = tmp_path / "pwd"
    await run(sup, data_dir, sh(f"pwd > {out}"), cwd=str(tmp_path))
    assert out.read_text().strip() == str(tmp_path)


async def _output_as(sup, data_dir, script: str, **kw) -> list[str]:
    s = spec(data_dir, sh(script), cwd="/", **kw)
    await sup.start(s)
    rec = await wait_exit(sup, s.exec_id)
    assert rec.exit_code == 0, rec
    return tail_text(Path(s.run_dir), "stdout").splitlines()


async def test_run_as_user_sets_uid_gid_and_groups(sup, data_dir):
    """A job run as 'nobody' has nobody's uid, gid and groups, none of root's."""
    pw = pwd.getpwnam("nobody")
    uid, gid, groups = await _output_as(sup, data_dir, "id -u; id -g; id -G", uid=pw.pw_uid)
    assert (int(uid), int(gid)) == (pw.pw_uid, pw.pw_gid)
    assert {int(g) for g in groups.split()} == set(os.getgrouplist("nobody", pw.pw_gid))
    assert 0 not in {int(g) for g in groups.split()}


async def test_explicit_gid_and_groups_are_applied(sup, data_dir):
    """An explicit gid and supplementary group list are what the job gets."""
    pw = pwd.getpwnam("nobody")
    gid, groups = await _output_as(
        sup, data_dir, "id -g; id -G", uid=pw.pw_uid, gid=pw.pw_gid, groups=[pw.pw_gid, 4321]
    )
    assert int(gid) == pw.pw_gid
    assert {int(g) for g in groups.split()} == {pw.pw_gid, 4321}


async def test_list_running_shows_a_running_job(sup, data_dir):
    """A running job is listed with its pid and start ticks until it ends."""
    s = spec(data_dir, ["sleep", "30"])
    started = await sup.start(s)
    assert isinstance(started, Started)
    running = {r.exec_id: r for r in await sup.list_running()}
    assert running[s.exec_id].pid == started.pid
    assert running[s.exec_id].start_ticks == started.start_ticks
    await sup.cancel(s.exec_id)
    await wait_exit(sup, s.exec_id)
    assert s.exec_id not in {r.exec_id for r in await sup.list_running()}


async def test_unacked_exit_is_replayed_to_the_next_connection(sup, data_dir):
    """An exit nobody acked is sent again on the next connection, and not after an ack."""
    s = spec(data_dir, sh("exit 4"))
    await sup.start(s)
    async with __import__("asyncio").timeout(10):
        async for rec in sup.exits():
            if rec.exec_id == s.exec_id:
                break
    second = await SupervisorClient.connect(data_dir)
    try:
        replayed = await wait_exit(second, s.exec_id, timeout_s=10)  # acks it
        assert replayed.exit_code == 4
    finally:
        await second.close()
    third = await SupervisorClient.connect(data_dir)
    try:
        marker = spec(data_dir, ["true"])
        await third.start(marker)
        async with __import__("asyncio").timeout(10):
            async for rec in third.exits():
                assert rec.exec_id != s.exec_id
                if rec.exec_id == marker.exec_id:
                    await third.ack(rec.exec_id)
                    break
    finally:
        await third.close()


async def test_containment_mode_is_reported(sup):
    """The client reports which containment is active: cgroup or sweep."""
    assert sup.containment in ("cgroup", "sweep")
    assert sup.containment_detail


def test_setsid_grandchild_is_killed_in_sweep_mode(tmp_path):
    """Without cgroups, the descendant sweep still finds a double-forked setsid grandchild."""
    import asyncio

    data = tmp_path / "d"
    pidfile = tmp_path / "gc.pid"

    async def scenario() -> str:
        client = await SupervisorClient.connect(data)
        try:
            assert client.containment == "sweep"
            script = f"(setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' &) ; sleep 60"
            s = spec(data, sh(script), timeout_s=0.5, kill_grace_s=0.3)
            await client.start(s)
            gc = await asyncio.to_thread(_read_pid, pidfile)
            rec = await wait_exit(client, s.exec_id)
            assert rec.outcome == "timeout" and gc in rec.leftovers
            assert pid_gone(gc)
            return s.exec_id
        finally:
            await client.close()

    with running_supervisor(data, containment="sweep"):
        exec_id = asyncio.run(scenario())
    assert _processes_of(exec_id) == []


def _processes_of(exec_id: str) -> list[int]:
    """Pids of live processes carrying ``exec_id`` in their environment (psutil)."""
    found = []
    for p in psutil.process_iter(["environ", "status"]):
        env = p.info["environ"] or {}
        if env.get("SQU_EXECUTION_ID") == exec_id and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p.pid)
    return found


async def test_garbage_from_a_client_never_hurts_the_supervisor(sup, data_dir):
    """Malformed frames close that one connection; the supervisor keeps serving others."""
    import asyncio
    import struct

    from agentd.supervisor.server import socket_path

    for junk in (
        struct.pack(">I", 5) + b"{oops",
        struct.pack(">I", 1 << 30),
        b"\x00\x00\x00\x02[]",
    ):
        reader, writer = await asyncio.open_unix_connection(str(socket_path(data_dir)))
        writer.write(junk)
        await writer.drain()
        async with asyncio.timeout(10):
            await reader.read()  # the supervisor closes this connection
        writer.close()
    rec = await run(sup, data_dir, sh("exit 9"))
    assert rec.exit_code == 9


async def test_bad_start_request_is_an_error_reply(sup, data_dir):
    """A start with a missing field or an unsafe id is refused with a clear error."""
    from agentd.supervisor import SupervisorError

    with pytest.raises(SupervisorError, match="argv"):
        await sup._request("start", exec_id="X1", env={}, run_dir=str(data_dir / "runs" / "X1"))
    with pytest.raises(SupervisorError, match="safe file name"):
        await sup.start(spec(data_dir, ["true"], exec_id="../escape"))


async def test_run_dir_that_exists_is_never_started_again(sup, data_dir):
    """An id whose run dir exists without an exit record (an interrupted spawn) is refused."""
    from agentd.supervisor import SupervisorError

    s = spec(data_dir, ["true"])
    os.makedirs(s.run_dir)
    with pytest.raises(SupervisorError, match="not started twice"):
        await sup.start(s)


def test_log_write_error_is_counted_not_fatal(tmp_path):
    """A failing log write (file size limit) drops the bytes, counts them and says why."""
    import subprocess
    import sys

    code = f"""
import resource, signal
from pathlib import Path
from agentd.supervisor.capture import LogSink
from shared.logframe import Stream
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
sink = LogSink(Path({str(tmp_path)!r}), 1 << 20)
for _ in range(10):
    sink.write(Stream.STDOUT, memoryview(b"x" * 1000))
total, dropped = sink.finish()
print(total, dropped, sink.error)
"""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    total, dropped, error = out.stdout.split(" ", 2)
    assert total == "10000" and 6000 <= int(dropped) < 10000  # what fitted in 4 KiB is kept
    assert "log write failed" in error


def test_another_user_cannot_reach_the_supervisor(data_dir):
    """A process running as 'nobody' cannot connect to the supervisor's socket."""
    import subprocess

    from agentd.supervisor.server import socket_path

    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({str(socket_path(data_dir))!r})\n"
        "except OSError as e:\n"
        "    print('refused', e.errno)\n"
        "    sys.exit(0)\n"
        "s.settimeout(5)\n"
        "print('closed' if s.recv(1) == b'' else 'open')\n"
    )
    out = subprocess.run(
        ["/usr/bin/python3", "-c", code],
        user="nobody",
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert out.stdout.split()[0] in ("refused", "closed"), out


async def test_nul_byte_in_argv_is_a_spawn_failed_record(sup, data_dir):
    """An argument with a NUL byte cannot be exec'd: a spawn_failed record says so."""
    rec = await sup.start(spec(data_dir, ["echo", "a\0b"]))
    assert isinstance(rec, ExitRecord) and rec.outcome == "spawn_failed"
    assert "null" in rec.error


async def test_empty_argv_is_refused(sup, data_dir):
    """A start without a command is a bad request naming the execution."""
    from agentd.supervisor import SupervisorError

    s = spec(data_dir, [])
    with pytest.raises(SupervisorError, match="argv is empty"):
        await sup.start(s)
