"""Shared helpers for the supervisor tests: a real supervisor process per module."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from agentd.supervisor import ExitRecord, RunSpec, Started, SupervisorClient
from agentd.supervisor.client import spawn_supervisor
from agentd.supervisor.server import socket_path, supervisor_dir

BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def new_id() -> str:
    return "T" + uuid.uuid4().hex[:24].upper()


def supervisor_pid(data_dir: Path) -> int:
    return int((supervisor_dir(data_dir) / "pid").read_text())


def wait_for(predicate, timeout_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def pid_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state in (b"Z", b"X")
    except OSError:
        return True


def start_supervisor(data_dir: Path, containment: str = "auto", **kw) -> int:
    """Start a detached supervisor for ``data_dir`` and return its pid once it listens."""
    data_dir.mkdir(parents=True, exist_ok=True)
    spawn_supervisor(data_dir, containment=containment, **kw)
    wait_for(
        lambda: socket_path(data_dir).exists() and (supervisor_dir(data_dir) / "pid").exists(),
        what="the supervisor socket",
    )
    return supervisor_pid(data_dir)


def stop_supervisor(data_dir: Path) -> None:
    """SIGTERM the supervisor (it exits once no job runs); SIGKILL it if it lingers."""
    with contextlib.suppress(OSError, ValueError):
        pid = supervisor_pid(data_dir)
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda: pid_gone(pid), 10.0, "the supervisor to stop")
        except AssertionError:
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_supervisor(data_dir: Path, containment: str = "auto") -> Iterator[int]:
    pid = start_supervisor(data_dir, containment)
    try:
        yield pid
    finally:
        stop_supervisor(data_dir)


def spec(data_dir: Path, argv: list[str], **kw) -> RunSpec:
    exec_id = kw.pop("exec_id", None) or new_id()
    env = kw.pop("env", None) or {**BASE_ENV, "SQU_EXECUTION_ID": exec_id}
    return RunSpec(
        exec_id=exec_id,
        argv=argv,
        env=env,
        run_dir=str(data_dir / "runs" / exec_id),
        kill_grace_s=kw.pop("kill_grace_s", 1.0),
        **kw,
    )


async def wait_exit(sup: SupervisorClient, exec_id: str, timeout_s: float = 30.0) -> ExitRecord:
    """The exit record of ``exec_id`` from ``sup.exits()``, acknowledged."""
    async with asyncio.timeout(timeout_s):
        async for record in sup.exits():
            await sup.ack(record.exec_id)
            if record.exec_id == exec_id:
                return record
    raise AssertionError("exits() ended")


async def run(sup: SupervisorClient, data_dir: Path, argv: list[str], **kw) -> ExitRecord:
    """Start a job and wait for its exit record."""
    s = spec(data_dir, argv, **kw)
    started = await sup.start(s)
    if isinstance(started, ExitRecord):
        return await wait_exit(sup, s.exec_id)
    assert isinstance(started, Started)
    return await wait_exit(sup, s.exec_id)


def sh(script: str) -> list[str]:
    return ["/bin/sh", "-c", script]
