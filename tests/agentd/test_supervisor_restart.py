"""Crashes and restarts: agent or supervisor killed with -9, a reboot, a second supervisor."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec

from agentd.supervisor import (
    SupervisorClient,
    current_boot_id,
    is_process_alive,
    read_exit_record,
)
from agentd.supervisor.records import StartedFile
from agentd.supervisor.server import supervisor_dir
from tests.agentd._supervisor_support import (
    new_id,
    pid_gone,
    running_supervisor,
    sh,
    spec,
    start_supervisor,
    stop_supervisor,
    supervisor_pid,
    wait_exit,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]

AGENT = """
import asyncio, sys
from pathlib import Path
from agentd.supervisor import SupervisorClient, RunSpec

async def main():
    data, exec_id = Path(sys.argv[1]), sys.argv[2]
    sup = await SupervisorClient.connect_or_spawn(data)
    await sup.start(RunSpec(exec_id=exec_id, argv=["/bin/sh", "-c", sys.argv[3]],
                            env={"PATH": "/usr/bin:/bin"}, run_dir=str(data / "runs" / exec_id)))
    print("started", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_agent_killed_mid_run_gets_the_real_exit_code_after_restart(tmp_path):
    """kill -9 of the agent process: a new agent reconnects and gets the job's real exit code."""
    data = tmp_path / "d"
    data.mkdir()
    exec_id = new_id()
    agent = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-c", AGENT, str(data), exec_id, "sleep 1; echo done; exit 7"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert agent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(agent.stdout.readline), 20)
        assert line == b"started\n"
        t_killed = time.monotonic()
        agent.kill()
        agent.wait()
        sup = await SupervisorClient.connect(data)  # the supervisor outlived the agent
        try:
            running = {r.exec_id for r in await sup.list_running()}
            assert exec_id in running  # re-adopted: still running after the agent died
            rec = await wait_exit(sup, exec_id)
        finally:
            await sup.close()
        assert (rec.outcome, rec.exit_code) == ("exited", 7)
        assert rec.finished_at - rec.started_at >= 0.9
        assert time.monotonic() - t_killed < 20
    finally:
        if agent.poll() is None:
            agent.kill()
        stop_supervisor(data)


async def test_supervisor_killed_job_is_alive_then_adopted_and_ends_lost(tmp_path):
    """kill -9 of the supervisor: the job lives on, a new supervisor adopts it, it ends 'lost'."""
    data = tmp_path / "d"
    with running_supervisor(data) as first_pid:
        sup = await SupervisorClient.connect(data)
        s = spec(data, ["sleep", "1.5"])
        started = await sup.start(s)
        await sup.close()
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.to_thread(wait_for, lambda: pid_gone(first_pid), 10, "supervisor death")
        assert is_process_alive(started.pid, started.start_ticks, started.boot_id)
        sup = await SupervisorClient.connect_or_spawn(data)
        try:
            assert sup.supervisor_pid != first_pid
            adopted = {r.exec_id: r for r in await sup.list_running()}
            assert adopted[s.exec_id].adopted
            rec = await wait_exit(sup, s.exec_id)
        finally:
            await sup.close()
        assert rec.outcome == "lost" and "exit status is unknown" in rec.error
        assert not is_process_alive(started.pid, started.start_ticks, started.boot_id)
        assert read_exit_record(Path(s.run_dir)) == rec


async def test_job_that_ended_while_no_supervisor_ran_is_lost(tmp_path):
    """A job that ends while its supervisor is dead is reported lost by the next supervisor."""
    data = tmp_path / "d"
    with running_supervisor(data) as first_pid:
        sup = await SupervisorClient.connect(data)
        s = spec(data, ["sleep", "0.2"])
        started = await sup.start(s)
        await sup.close()
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.to_thread(
            wait_for,
            lambda: not is_process_alive(started.pid, started.start_ticks, started.boot_id),
            10,
            "the job to end",
        )
        sup = await SupervisorClient.connect_or_spawn(data)
        try:
            rec = await wait_exit(sup, s.exec_id)
        finally:
            await sup.close()
        assert rec.outcome == "lost" and "no supervisor" in rec.error


async def test_reboot_marks_unfinished_runs_lost(tmp_path):
    """A run started in another boot (different boot id) is lost, not re-adopted."""
    data = tmp_path / "d"
    exec_id = new_id()
    run_dir = data / "runs" / exec_id
    run_dir.mkdir(parents=True)
    # The pid of this very process: alive, but from "another boot", so it must not be adopted.
    fake = StartedFile(
        exec_id=exec_id,
        pid=os.getpid(),
        boot_id="00000000-old-boot",
        start_ticks=1,
        started_at=time.time() - 60,
        run_dir=str(run_dir),
    )
    supervisor_dir(data).mkdir(parents=True)
    (supervisor_dir(data) / "journal").write_bytes(b"S " + msgspec.json.encode(fake) + b"\n")
    with running_supervisor(data):
        sup = await SupervisorClient.connect(data)
        try:
            rec = await wait_exit(sup, exec_id)
        finally:
            await sup.close()
    assert rec.outcome == "lost" and "machine restarted" in rec.error
    assert current_boot_id() != "00000000-old-boot"


def test_second_supervisor_for_the_same_data_dir_exits(tmp_path):
    """Only one supervisor serves a data dir: a second one exits at once, leaving the first."""
    data = tmp_path / "d"
    with running_supervisor(data) as pid:
        second = subprocess.run(
            [sys.executable, "-m", "agentd.supervisor", "--data-dir", str(data)],
            cwd=ROOT,
            capture_output=True,
            timeout=30,
        )
        assert second.returncode == 0 and b"already serves" in second.stderr
        assert supervisor_pid(data) == pid and not pid_gone(pid)


async def test_connect_or_spawn_starts_a_supervisor_when_none_runs(tmp_path):
    """With no supervisor running, connect_or_spawn starts one and reports its containment."""
    data = tmp_path / "d"
    try:
        sup = await SupervisorClient.connect_or_spawn(data)
        try:
            assert sup.containment in ("cgroup", "sweep")
            assert not pid_gone(sup.supervisor_pid)
            rec_spec = spec(data, sh("exit 0"))
            await sup.start(rec_spec)
            assert (await wait_exit(sup, rec_spec.exec_id)).exit_code == 0
        finally:
            await sup.close()
    finally:
        stop_supervisor(data)


async def test_adopted_job_still_gets_its_timeout(tmp_path):
    """A job adopted by a restarted supervisor is still killed at its original deadline."""
    data = tmp_path / "d"
    with running_supervisor(data) as first_pid:
        sup = await SupervisorClient.connect(data)
        s = spec(data, ["sleep", "60"], timeout_s=1.5, kill_grace_s=0.5)
        started = await sup.start(s)
        await sup.close()
        t0 = time.monotonic()
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.to_thread(wait_for, lambda: pid_gone(first_pid), 10, "supervisor death")
        sup = await SupervisorClient.connect_or_spawn(data)
        try:
            rec = await wait_exit(sup, s.exec_id)
        finally:
            await sup.close()
        assert rec.outcome == "lost"
        assert time.monotonic() - t0 < 15
        assert not is_process_alive(started.pid, started.start_ticks, started.boot_id)


def test_idle_supervisor_exits_and_is_started_again(tmp_path):
    """With no job and no client it exits after its idle time; connect_or_spawn starts another."""
    data = tmp_path / "d"
    pid = start_supervisor(data, idle_exit_s=0.5)
    wait_for(lambda: pid_gone(pid), 15, "the idle supervisor to exit")

    async def reconnect() -> int:
        sup = await SupervisorClient.connect_or_spawn(data)
        try:
            return sup.supervisor_pid
        finally:
            await sup.close()

    try:
        assert asyncio.run(reconnect()) != pid
    finally:
        stop_supervisor(data)
