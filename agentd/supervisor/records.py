"""The supervisor's records and the facts about processes both sides rely on.

``RunSpec`` goes in, ``Started`` and ``ExitRecord`` come out; ``exit.json`` in
the run directory is the durable truth of how an execution ended, written
atomically (tmp + fsync + rename), so any process can read it after any crash.
A process is identified by boot id + pid + kernel start time (clock ticks,
``/proc/PID/stat`` field 22), never by a wall-clock create time that a clock
step can change (DESIGN.md: re-adoption).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Literal

import msgspec

from agentd.fsutil import write_atomic

__all__ = [
    "BOOT_ID_PATH",
    "ExitRecord",
    "Outcome",
    "RunSpec",
    "RunningInfo",
    "Started",
    "current_boot_id",
    "is_process_alive",
    "proc_start_ticks",
    "read_exit_record",
    "write_json_atomic",
]

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")

Outcome = Literal["exited", "timeout", "cancelled", "spawn_failed", "lost"]


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What to run. ``env`` is the complete environment (build it with ``agentd.procenv``)."""

    exec_id: str
    argv: list[str]
    env: dict[str, str]
    run_dir: str  # a str or Path; DATA/runs/<exec_id>
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None
    timeout_s: float | None = None
    kill_grace_s: float = 10.0
    max_log_bytes: int = 10 * 1024 * 1024
    # Processes the job leaves behind when its main process exits are part of
    # the job: terminated (SIGTERM, grace, SIGKILL) and reported in ``leftovers``.
    kill_leftovers: bool = True
    # Refuse to start (DiskFull) when the run directory's file system has less free.
    min_free_bytes: int = 64 * 1024 * 1024


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """A job that is running: enough to find it again after any restart."""

    exec_id: str
    pid: int
    boot_id: str
    start_ticks: int
    started_at: float


class ExitRecord(msgspec.Struct, frozen=True, kw_only=True):
    """How an execution ended. ``outcome`` says who ended it; the exit code/signal are real."""

    exec_id: str
    outcome: Outcome
    exit_code: int | None = None
    signal: int | None = None
    started_at: float | None = None
    finished_at: float = 0.0
    cpu_time_s: float | None = None
    peak_rss_kb: int | None = None
    log_bytes: int = 0
    dropped_bytes: int = 0
    leftovers: list[int] = []
    error: str = ""
    pid: int | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)


class RunningInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A job the supervisor is watching now."""

    exec_id: str
    pid: int
    boot_id: str
    start_ticks: int
    started_at: float
    run_dir: str
    deadline_at: float | None = None  # wall-clock estimate of the timeout, for display
    # True for a job found alive by a restarted supervisor: it is watched and its
    # timeout enforced, but its exit status cannot be known (it ends as "lost").
    adopted: bool = False
    stopping: str = ""  # "timeout" | "cancelled" while being stopped


class StartedFile(msgspec.Struct, frozen=True, kw_only=True):
    """The started record, journalled (``DATA/supervisor/journal``) before ``Started``
    is reported and forgotten when the agent acks the exit."""

    exec_id: str
    pid: int
    boot_id: str
    start_ticks: int
    started_at: float
    # CLOCK_MONOTONIC is system-wide, so a restarted supervisor keeps the deadline.
    deadline_monotonic: float | None = None
    kill_grace_s: float = 10.0
    supervisor_pid: int = 0
    run_dir: str = ""


def write_json_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the whole new one."""
    write_atomic(path, data, mode=0o640, fsync=fsync)


def read_exit_record(run_dir: Path | str) -> ExitRecord | None:
    """The execution's ``exit.json``, or None when there is none (or it is unreadable)."""
    try:
        data = (Path(run_dir) / "exit.json").read_bytes()
        return msgspec.json.decode(data, type=ExitRecord)
    except (OSError, msgspec.DecodeError):
        # A torn file can only come from a power loss, after which the boot id
        # changed and the execution is lost anyway.
        return None


def current_boot_id() -> str:
    """This boot's id; changes on every reboot."""
    return BOOT_ID_PATH.read_text().strip()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    close = raw.rfind(b")")
    if close < 0:
        return None
    return raw[close + 2 :].decode("ascii", "replace").split()


def proc_start_ticks(pid: int) -> int | None:
    """Kernel start time of ``pid`` in clock ticks since boot; None if no such pid."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])  # field 22 overall: fields here start at field 3


def is_process_alive(pid: int, start_ticks: int, boot_id: str) -> bool:
    """Whether the process started as (pid, start_ticks) in boot ``boot_id`` is still running.

    A zombie counts as gone: it has exited, whoever reaps it.
    """
    with contextlib.suppress(OSError):
        if current_boot_id() != boot_id:
            return False
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return False
    return fields[0] not in ("Z", "X") and int(fields[19]) == start_ticks
