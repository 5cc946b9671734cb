"""Containment: finding every process that belongs to a job, and stopping them all.

Two modes (DESIGN.md: containment), chosen once when the supervisor starts:

* ``cgroup``: cgroup v2 is writable from the supervisor's own cgroup. Each job
  gets ``<base>/jobs/<exec_id>``; the supervisor moves *itself* into that cgroup
  around the spawn so the child is born inside it (no window in which a fast
  fork escapes), and ``cgroup.kill`` ends everything in it at once.
* ``sweep``: the job's own session and process group, plus a scan of ``/proc``
  for descendants: children by ppid, the job's session and group, and orphans
  re-parented to the supervisor (a child subreaper) that carry the job's
  ``SQU_EXECUTION_ID`` in their environment.

Signals to processes that are not our direct children go through a pidfd
opened after checking the kernel start time, so a recycled pid is never hit.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Cgroups",
    "ProcInfo",
    "detect_cgroups",
    "members_by_sweep",
    "scan_procs",
    "set_child_subreaper",
    "signal_process",
]

log = logging.getLogger("agentd.supervisor")

PR_SET_CHILD_SUBREAPER = 36


def set_child_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process, so they can be found and reaped."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class ProcInfo:
    pid: int
    ppid: int
    pgrp: int
    session: int
    start_ticks: int
    state: str


def scan_procs() -> dict[int, ProcInfo]:
    """Every process in /proc now (a snapshot: a few ms for a few hundred processes)."""
    out: dict[int, ProcInfo] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        close = raw.rfind(b")")
        fields = raw[close + 2 :].split()
        if len(fields) < 20:
            continue
        pid = int(name)
        out[pid] = ProcInfo(
            pid=pid,
            ppid=int(fields[1]),
            pgrp=int(fields[2]),
            session=int(fields[3]),
            start_ticks=int(fields[19]),
            state=fields[0].decode("ascii", "replace"),
        )
    return out


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return False
    return data.startswith(marker) or (b"\0" + marker) in data


def members_by_sweep(
    procs: dict[int, ProcInfo],
    *,
    job_pid: int,
    exec_id: str,
    supervisor_pid: int,
    other_job_pids: set[int],
) -> dict[int, int]:
    """Live processes in the ``procs`` snapshot that belong to the job: {pid: start_ticks}."""
    members: set[int] = set()
    marker = f"SQU_EXECUTION_ID={exec_id}\0".encode()
    for p in procs.values():
        if p.state in ("Z", "X") or p.pid == supervisor_pid:
            continue
        if p.pid == job_pid or p.session == job_pid or p.pgrp == job_pid:
            members.add(p.pid)
        elif (
            p.ppid == supervisor_pid and p.pid not in other_job_pids and _environ_has(p.pid, marker)
        ):
            members.add(p.pid)  # an orphan that escaped its session, re-parented to us
    # Descendants of members by ppid, to a fixed point.
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in members and child != supervisor_pid and child not in other_job_pids:
                if procs[child].state not in ("Z", "X"):
                    members.add(child)
                    stack.append(child)
    return {pid: procs[pid].start_ticks for pid in members}


def signal_process(pid: int, start_ticks: int | None, sig: int) -> bool:
    """Send ``sig`` to ``pid`` only if it is still the process that started at ``start_ticks``."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if start_ticks is not None:
            from agentd.supervisor.records import proc_start_ticks

            if proc_start_ticks(pid) != start_ticks:
                return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


class Cgroups:
    """The cgroup v2 subtree the supervisor owns: ``<base>/supervisor`` and ``<base>/jobs/<id>``."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.home = base / "supervisor"
        self.jobs = base / "jobs"

    def release(self) -> None:
        """Leave the subtree (back to the cgroup we came from) and remove what is empty."""
        with contextlib.suppress(OSError):
            self.enter(self.base.parent)
        for path in (self.home, self.jobs, self.base):
            with contextlib.suppress(OSError):
                path.rmdir()

    def job_dir(self, exec_id: str) -> Path:
        return self.jobs / exec_id

    def enter(self, path: Path) -> None:
        """Move this whole process into ``path`` (children spawned now are born there)."""
        (path / "cgroup.procs").write_text("0")

    def create_job(self, exec_id: str) -> Path:
        path = self.job_dir(exec_id)
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        return path

    def procs(self, exec_id: str) -> dict[int, int]:
        """{pid: start_ticks} of every process in the job's cgroup (and any sub-cgroups)."""
        from agentd.supervisor.records import proc_start_ticks

        out: dict[int, int] = {}
        root = self.job_dir(exec_id)
        try:
            if "populated 0" in (root / "cgroup.events").read_text():
                return out  # nothing left anywhere in the subtree: one read, no walk
        except OSError:
            return out
        for dirpath, _dirs, _files in os.walk(root):
            try:
                text = Path(dirpath, "cgroup.procs").read_text()
            except OSError:
                continue
            for line in text.split():
                pid = int(line)
                ticks = proc_start_ticks(pid)
                if ticks is not None:
                    out[pid] = ticks
        return out

    def kill(self, exec_id: str) -> bool:
        """SIGKILL everything in the job's cgroup at once."""
        try:
            (self.job_dir(exec_id) / "cgroup.kill").write_text("1")
            return True
        except OSError:
            return False

    def remove_job(self, exec_id: str) -> None:
        root = self.job_dir(exec_id)
        with contextlib.suppress(OSError):
            root.rmdir()  # the usual case: no sub-cgroups
            return
        for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _cgroup2_mount() -> Path | None:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


def _own_cgroup2_path() -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                return line[3:].strip() or "/"
    except OSError:
        pass
    return None


def detect_cgroups(data_dir: Path) -> tuple[Cgroups | None, str]:
    """The cgroup subtree to use, or None and why not (then the mode is ``sweep``).

    The supervisor moves itself into ``<base>/supervisor`` so that ``<base>`` holds no
    process of its own (cgroup v2's no-internal-process rule when controllers are on).
    """
    mount = _cgroup2_mount()
    own = _own_cgroup2_path()
    if mount is None or own is None:
        return None, "no cgroup v2 hierarchy mounted"
    own_dir = mount / own.lstrip("/")
    name = "squ-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    if own_dir.name == "supervisor" and own_dir.parent.name.startswith("squ-"):
        base = own_dir.parent  # already inside our own subtree (a restart)
    else:
        base = own_dir / name
    cg = Cgroups(base)
    try:
        for path in (base, cg.home, cg.jobs):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
        if not (cg.jobs / "cgroup.kill").exists() and not (base / "cgroup.kill").exists():
            return None, "cgroup v2 without cgroup.kill (kernel < 5.14)"
        cg.enter(cg.home)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.EBUSY):
            return None, f"cgroup v2 at {own_dir} is not delegated to us ({exc.strerror})"
        return None, f"cgroup v2 at {own_dir} unusable: {exc}"
    return cg, f"cgroup v2 subtree {base}"
