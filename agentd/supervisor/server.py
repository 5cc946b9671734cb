"""The supervisor process: spawns jobs, owns their output, timeout and exit status.

One per agent data directory (a lock file makes sure), detached in its own
session so that an agent restart or crash never touches a running job. It is a
child subreaper, so processes a job orphans come back to it to be found,
killed and reaped. Everything runs on one asyncio loop with no per-job task:
a job costs two pipe fds, one log fd, a timer handle and a small record.

Output never passes through the agent: each job's stdout and stderr are pipes
read here with one shared 1 MiB buffer and written as frames to the run
directory (``capture.LogSink``). Exits are found on SIGCHLD with
``waitid(WNOWAIT)`` and reaped with ``wait4`` for the rusage. ``exit.json`` is
written (tmp + fsync + rename) before any client hears of the exit, and an exit
is pushed to every connected client until one of them acks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from agentd.supervisor import contain
from agentd.supervisor.capture import LogSink
from agentd.supervisor.journal import Journal
from agentd.supervisor.records import (
    ExitRecord,
    RunningInfo,
    RunSpec,
    Started,
    StartedFile,
    current_boot_id,
    is_process_alive,
    proc_start_ticks,
    read_exit_record,
    write_json_atomic,
)
from agentd.supervisor.wire import MessageReader, WireError, encode_message
from agentd.unixpath import reachable
from shared.logframe import Stream

__all__ = ["PROTOCOL_VERSION", "Supervisor", "socket_path", "supervisor_dir"]

log = logging.getLogger("agentd.supervisor")

PROTOCOL_VERSION = 1
READ_BUFFER_BYTES = 1024 * 1024
PIPE_BYTES = 1024 * 1024
_EXEC_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_POLL_S = 0.05


def supervisor_dir(data_dir: Path) -> Path:
    return data_dir / "supervisor"


def socket_path(data_dir: Path) -> Path:
    return supervisor_dir(data_dir) / "sock"


@dataclass(slots=True, eq=False)
class Run:
    spec: RunSpec
    run_dir: Path
    pid: int
    start_ticks: int
    started_at: float
    started_mono: float
    boot_id: str
    sink: LogSink | None
    pipes: dict[int, Stream] = field(default_factory=dict)
    deadline_mono: float | None = None
    timer: asyncio.TimerHandle | None = None
    stopping: str = ""
    stop_task: asyncio.Task[None] | None = None
    exited: bool = False
    status: int | None = None
    rusage: Any = None
    leftovers: set[int] = field(default_factory=set)
    adopted: bool = False
    pidfd: int | None = None
    in_cgroup: bool = False
    pipes_closed: asyncio.Event = field(default_factory=asyncio.Event)
    error: str = ""
    hwm_kb: int | None = None  # the main process's VmHWM, sampled while it runs

    def started(self) -> Started:
        return Started(
            exec_id=self.spec.exec_id,
            pid=self.pid,
            boot_id=self.boot_id,
            start_ticks=self.start_ticks,
            started_at=self.started_at,
        )


class _Conn:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.delivered: set[str] = set()

    def send(self, message: dict[str, Any]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode_message(message))


class SupervisorError(Exception):
    """A request that cannot be done; becomes an error reply with this code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Supervisor:
    """The supervisor's state and loop. ``await Supervisor(data_dir).serve()`` runs it."""

    def __init__(
        self, data_dir: Path, *, containment: str = "auto", idle_exit_s: float = 600.0
    ) -> None:
        self.data_dir = data_dir
        # With no job, no unacked exit and no client for this long, exit: the agent
        # starts a new one when it connects again (0: never).
        self.idle_exit_s = idle_exit_s
        self.dir = supervisor_dir(data_dir)
        self.journal: Journal | None = None
        self.runs: dict[str, Run] = {}
        self.by_pid: dict[int, Run] = {}
        self.unacked: dict[str, ExitRecord] = {}
        self.conns: set[_Conn] = set()
        self.boot_id = current_boot_id()
        self.pid = os.getpid()
        self.buffer = bytearray(READ_BUFFER_BYTES)
        self.view = memoryview(self.buffer)
        self.stopping = False
        self.idle = asyncio.Event()
        self.cgroups: contain.Cgroups | None = None
        self.containment_detail = "sweep of the job's session and descendants"
        self._requested_containment = containment
        self._bg: set[asyncio.Task[Any]] = set()
        self.own_hwm_kb = _vm_hwm_kb(self.pid) or 0
        self._scan: tuple[float, dict[int, contain.ProcInfo]] | None = None
        self._exits_to_write: list[tuple[Path, bytes, asyncio.Future[None]]] = []
        self._writer_task: asyncio.Task[None] | None = None
        self._runs_dirs_made: set[Path] = set()
        self._scan_task: asyncio.Task[None] | None = None

    @property
    def containment(self) -> str:
        return "cgroup" if self.cgroups is not None else "sweep"

    # -- lifecycle -------------------------------------------------------------

    async def serve(self, *, ready: asyncio.Event | None = None) -> None:
        """Run until asked to stop and no job is left. Call with the lock held."""
        loop = asyncio.get_running_loop()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.dir / "journal")
        contain.set_child_subreaper()
        if self._requested_containment != "sweep":
            cg, why = contain.detect_cgroups(self.data_dir)
            self.cgroups = cg
            if cg is not None:
                self.containment_detail = why
            else:
                self.containment_detail = f"sweep ({why})"
        log.info("containment: %s", self.containment_detail)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
        self._recover()
        path = socket_path(self.data_dir)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: we hold the lock, so no live supervisor owns it
        server = await _start_unix_server(self._handle, path)
        os.chmod(path, 0o600)
        write_json_atomic(self.dir / "pid", f"{self.pid}\n".encode(), fsync=False)
        log.info("supervisor %d serving on %s", self.pid, path)
        if ready is not None:
            ready.set()
        upkeep = asyncio.create_task(self._upkeep())
        idle_since = time.monotonic()
        try:
            while not (self.stopping and not self.runs):
                self.idle.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.idle.wait(), 1.0)
                if self.runs or self.conns or self.unacked:
                    idle_since = time.monotonic()
                elif self.idle_exit_s and time.monotonic() - idle_since > self.idle_exit_s:
                    log.info("idle for %.0f s with no client: exiting", self.idle_exit_s)
                    self.stopping = True
        finally:
            upkeep.cancel()
            server.close()
            for conn in list(self.conns):
                conn.writer.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            if self.cgroups is not None and not self.runs:
                self.cgroups.release()
            if self.journal is not None:
                self.journal.close()
            log.info("supervisor %d stopped", self.pid)

    def _request_stop(self) -> None:
        # saq-style: stop taking work, let running jobs finish, then exit.
        if not self.stopping:
            log.info(
                "stop requested: refusing new jobs, exiting when %d job(s) end", len(self.runs)
            )
        self.stopping = True
        self.idle.set()

    async def _upkeep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self._reap()  # a lost SIGCHLD costs at most a second
                self._sample_memory()
            except Exception:
                log.exception("upkeep failed; carrying on")

    def _sample_memory(self) -> None:
        # ru_maxrss of a child includes the RSS of the process that forked it (the
        # kernel keeps the pre-exec high-water mark), so it cannot tell a 2 MB job
        # from this supervisor; VmHWM read while the job runs is its own (fresh mm).
        self.own_hwm_kb = max(self.own_hwm_kb, _vm_hwm_kb(self.pid) or 0)
        for run in self.runs.values():
            if not run.exited and not run.adopted:
                hwm = _vm_hwm_kb(run.pid)
                if hwm is not None:
                    run.hwm_kb = max(run.hwm_kb or 0, hwm)

    # -- recovery after a supervisor restart --------------------------------------

    def _recover(self) -> None:
        """Re-adopt or close every execution a previous supervisor left unacknowledged."""
        assert self.journal is not None
        for exec_id, started in sorted(self.journal.live.items()):
            run_dir = Path(started.run_dir)
            record = read_exit_record(run_dir)
            if record is not None:
                self.unacked[exec_id] = record
                continue
            if started.boot_id != self.boot_id:
                self._write_lost(
                    exec_id, run_dir, started, "the machine restarted while the job ran"
                )
                continue
            if not is_process_alive(started.pid, started.start_ticks, started.boot_id):
                self._write_lost(
                    exec_id,
                    run_dir,
                    started,
                    "the job ended while no supervisor watched it; its exit status is unknown",
                )
                continue
            self._adopt(exec_id, run_dir, started)

    def _write_lost(
        self, exec_id: str, run_dir: Path, started: StartedFile | None, why: str
    ) -> None:
        record = ExitRecord(
            exec_id=exec_id,
            outcome="lost",
            started_at=started.started_at if started else None,
            finished_at=time.time(),
            error=why,
            pid=started.pid if started else None,
        )
        with contextlib.suppress(OSError):
            write_json_atomic(run_dir / "exit.json", msgspec.json.encode(record))
        self.unacked[exec_id] = record
        log.warning("%s: lost: %s", exec_id, why)

    def _adopt(self, exec_id: str, run_dir: Path, started: StartedFile) -> None:
        try:
            pidfd = os.pidfd_open(started.pid)
        except OSError:
            self._write_lost(
                exec_id, run_dir, started, "the job ended while no supervisor watched it"
            )
            return
        spec = RunSpec(
            exec_id=exec_id,
            argv=[],
            env={},
            run_dir=str(run_dir),
            kill_grace_s=started.kill_grace_s,
        )
        run = Run(
            spec=spec,
            run_dir=run_dir,
            pid=started.pid,
            start_ticks=started.start_ticks,
            started_at=started.started_at,
            started_mono=time.monotonic(),
            boot_id=started.boot_id,
            sink=None,
            adopted=True,
            pidfd=pidfd,
            deadline_mono=started.deadline_monotonic,
        )
        run.pipes_closed.set()
        run.in_cgroup = self.cgroups is not None and self.cgroups.job_dir(exec_id).is_dir()
        self.runs[exec_id] = run
        loop = asyncio.get_running_loop()
        loop.add_reader(pidfd, self._adopted_exited, run)
        if run.deadline_mono is not None:
            run.timer = loop.call_at(run.deadline_mono, self._stop, run, "timeout")
        log.warning("%s: re-adopted pid %d (exit status will be unknown)", exec_id, run.pid)

    def _adopted_exited(self, run: Run) -> None:
        assert run.pidfd is not None
        asyncio.get_running_loop().remove_reader(run.pidfd)
        os.close(run.pidfd)
        run.pidfd = None
        run.exited = True
        run.error = "the supervisor restarted while the job ran; its exit status is unknown"
        self._spawn_bg(self._finish(run))

    # -- requests ------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        uid = _peer_uid(writer)
        if uid != os.getuid():
            # Belt and braces beside the 0700 directory: a client of another user
            # could start jobs as us.
            log.warning("refused a client running as uid %s", uid)
            writer.close()
            return
        conn = _Conn(writer)
        self.conns.add(conn)
        decoder = MessageReader()
        try:
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    self._dispatch(conn, message)
                await writer.drain()
        except WireError as exc:
            log.warning("closing a client: %s", exc.message)
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("client handler failed; closing that client")
        finally:
            self.conns.discard(conn)
            writer.close()

    def _dispatch(self, conn: _Conn, message: dict[str, Any]) -> None:
        req_id = message.get("id")
        op = message.get("op")
        params = message.get("params") or {}
        try:
            handler = _OPS.get(op) if isinstance(op, str) else None
            if handler is None or not isinstance(params, dict):
                raise SupervisorError("bad_request", f"unknown operation {op!r}")
            result = handler(self, conn, params)
            if req_id is None:
                return  # a notification (ack): no reply wanted
            conn.send({"id": req_id, "ok": True, "result": msgspec.to_builtins(result)})
        except SupervisorError as exc:
            conn.send(
                {"id": req_id, "ok": False, "error": {"code": exc.code, "message": exc.message}}
            )
        except msgspec.ValidationError as exc:
            conn.send(
                {"id": req_id, "ok": False, "error": {"code": "bad_request", "message": str(exc)}}
            )
        except Exception as exc:
            log.exception("request %r failed", op)
            conn.send(
                {
                    "id": req_id,
                    "ok": False,
                    "error": {"code": "internal", "message": f"{type(exc).__name__}: {exc}"},
                }
            )
        if op == "hello":
            for exec_id, record in list(self.unacked.items()):
                self._push_exit(conn, exec_id, record)

    def _op_hello(self, conn: _Conn, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "version": PROTOCOL_VERSION,
            "pid": self.pid,
            "boot_id": self.boot_id,
            "containment": self.containment,
            "containment_detail": self.containment_detail,
        }

    def _op_list(self, conn: _Conn, params: dict[str, Any]) -> list[RunningInfo]:
        now_wall, now_mono = time.time(), time.monotonic()
        return [
            RunningInfo(
                exec_id=run.spec.exec_id,
                pid=run.pid,
                boot_id=run.boot_id,
                start_ticks=run.start_ticks,
                started_at=run.started_at,
                run_dir=str(run.run_dir),
                deadline_at=None
                if run.deadline_mono is None
                else now_wall + run.deadline_mono - now_mono,
                adopted=run.adopted,
                stopping=run.stopping,
            )
            for run in self.runs.values()
        ]

    def _op_ack(self, conn: _Conn, params: dict[str, Any]) -> bool:
        exec_id = str(params.get("exec_id", ""))
        self.unacked.pop(exec_id, None)
        assert self.journal is not None
        self.journal.acked(exec_id)
        return True

    def _op_cancel(self, conn: _Conn, params: dict[str, Any]) -> str:
        exec_id = str(params.get("exec_id", ""))
        run = self.runs.get(exec_id)
        if run is None:
            return "finished" if exec_id in self.unacked else "unknown"
        self._stop(run, "cancelled")
        return "cancelling"

    def _op_start(self, conn: _Conn, params: dict[str, Any]) -> Started | ExitRecord:
        spec = msgspec.convert(params, RunSpec)
        exec_id = spec.exec_id
        if not _EXEC_ID.match(exec_id):
            raise SupervisorError(
                "bad_request", f"execution id {exec_id!r} is not a safe file name"
            )
        if not spec.argv:
            raise SupervisorError("bad_request", f"execution {exec_id}: argv is empty")
        if exec_id in self.runs:
            return self.runs[exec_id].started()  # a repeated start (client retry): same job
        if exec_id in self.unacked:
            conn.delivered.add(exec_id)
            return self.unacked[exec_id]
        run_dir = Path(spec.run_dir)
        previous = read_exit_record(run_dir)
        if previous is not None:
            conn.delivered.add(exec_id)
            return previous  # DESIGN.md: nothing runs twice
        if self.stopping:
            raise SupervisorError("stopping", "the supervisor is stopping and takes no new jobs")
        if run_dir.parent not in self._runs_dirs_made:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            self._runs_dirs_made.add(run_dir.parent)
        free = shutil.disk_usage(run_dir.parent).free
        if free < spec.min_free_bytes:
            raise SupervisorError(
                "disk_full",
                f"not starting {exec_id}: {free // (1024 * 1024)} MiB free in {run_dir.parent}, "
                f"{spec.min_free_bytes // (1024 * 1024)} MiB needed",
            )
        try:
            # The run dir is the evidence that a spawn was attempted: made before it,
            # so an id whose run dir exists (with no exit record) is never run again.
            run_dir.mkdir()
        except FileExistsError:
            raise SupervisorError(
                "conflict",
                f"execution {exec_id} was already attempted ({run_dir} exists) and has no "
                "exit record; it is not started twice",
            ) from None
        try:
            return self._spawn(spec, run_dir)
        except (OSError, ValueError, TypeError) as exc:  # ValueError: a NUL in argv/env
            record = ExitRecord(
                exec_id=exec_id,
                outcome="spawn_failed",
                finished_at=time.time(),
                error=_spawn_error(spec, exc),
            )
            write_json_atomic(run_dir / "exit.json", msgspec.json.encode(record))
            self._write_marker(
                StartedFile(
                    exec_id=exec_id,
                    pid=0,
                    boot_id=self.boot_id,
                    start_ticks=0,
                    started_at=record.finished_at,
                    run_dir=str(run_dir),
                )
            )
            self.unacked[exec_id] = record
            conn.delivered.add(exec_id)
            self._broadcast_exit(exec_id, record)
            return record

    def _write_marker(self, started: StartedFile) -> None:
        """Journal the execution's started record; it stays live until the agent acks."""
        assert self.journal is not None
        self.journal.started(started)

    # -- spawning ------------------------------------------------------------------

    def _spawn(self, spec: RunSpec, run_dir: Path) -> Started:
        uid, gid, groups = _credentials(spec)
        env = spec.env
        if "SQU_EXECUTION_ID" not in env:
            # The sweep recognises escaped descendants by it (contain.members_by_sweep).
            env = {**env, "SQU_EXECUTION_ID": spec.exec_id}
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        sink: LogSink | None = None
        cgroup_dir: Path | None = None
        try:
            for fd in (out_w, err_w):
                with contextlib.suppress(OSError):
                    fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            sink = LogSink(run_dir, spec.max_log_bytes)
            if self.cgroups is not None:
                cgroup_dir = self.cgroups.create_job(spec.exec_id)
                self.cgroups.enter(cgroup_dir)
            try:
                proc = subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out_w,
                    stderr=err_w,
                    cwd=spec.cwd,
                    env=env,
                    user=uid,
                    group=gid,
                    extra_groups=groups,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                if self.cgroups is not None:
                    self.cgroups.enter(self.cgroups.home)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            if sink is not None:
                sink.abandon()
            if cgroup_dir is not None and self.cgroups is not None:
                self.cgroups.remove_job(spec.exec_id)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        # We reap with wait4 for the rusage: stop Popen from ever waiting for it.
        proc.returncode = 0
        started_at, started_mono = time.time(), time.monotonic()
        ticks = proc_start_ticks(proc.pid) or 0  # our unreaped child: /proc/PID stays
        run = Run(
            spec=spec,
            run_dir=run_dir,
            pid=proc.pid,
            start_ticks=ticks,
            started_at=started_at,
            started_mono=started_mono,
            boot_id=self.boot_id,
            sink=sink,
            in_cgroup=cgroup_dir is not None,
        )
        if spec.timeout_s is not None:
            run.deadline_mono = started_mono + max(0.0, spec.timeout_s)
        started_file = StartedFile(
            exec_id=spec.exec_id,
            pid=run.pid,
            boot_id=self.boot_id,
            start_ticks=ticks,
            started_at=started_at,
            deadline_monotonic=run.deadline_mono,
            kill_grace_s=spec.kill_grace_s,
            supervisor_pid=self.pid,
            run_dir=str(run_dir),
        )
        loop = asyncio.get_running_loop()
        for fd, stream in ((out_r, Stream.STDOUT), (err_r, Stream.STDERR)):
            os.set_blocking(fd, False)
            run.pipes[fd] = stream
            loop.add_reader(fd, self._drain, run, fd)
        if run.deadline_mono is not None:
            run.timer = loop.call_at(run.deadline_mono, self._stop, run, "timeout")
        self.runs[spec.exec_id] = run
        self.by_pid[run.pid] = run
        try:
            # Journalled before Started is reported (see journal.py for why no fsync).
            self._write_marker(started_file)
        except OSError as exc:
            # Without a journal entry a restarted supervisor could not find this job:
            # stop it at once; its exit (cancelled, with the reason) goes out as usual.
            log.error("%s: cannot journal the start (%s); killing it", spec.exec_id, exc)
            run.error = f"not recorded in the supervisor journal ({exc.strerror}); stopped"
            run.stopping = "cancelled"
            with contextlib.suppress(OSError):
                os.killpg(run.pid, signal.SIGKILL)
        return run.started()

    # -- output --------------------------------------------------------------------

    def _drain(self, run: Run, fd: int) -> None:
        """Read once from a job's pipe (the loop calls again while there is more)."""
        try:
            n = os.readv(fd, [self.buffer])
        except BlockingIOError:
            return
        except OSError as exc:
            run.error = run.error or f"reading output failed: {exc.strerror}"
            n = 0
        if n == 0:
            self._close_pipe(run, fd)
            return
        assert run.sink is not None
        run.sink.write(run.pipes[fd], self.view[:n])

    def _close_pipe(self, run: Run, fd: int) -> None:
        if fd not in run.pipes:
            return
        asyncio.get_running_loop().remove_reader(fd)
        del run.pipes[fd]
        os.close(fd)
        if not run.pipes:
            run.pipes_closed.set()

    def _drain_now(self, run: Run) -> None:
        """Read whatever is buffered in the pipes right now, without waiting."""
        for fd in list(run.pipes):
            for _ in range(4096):  # bounded: a writer still running could feed us forever
                if fd not in run.pipes:
                    break
                try:
                    n = os.readv(fd, [self.buffer])
                except BlockingIOError:
                    break
                except OSError:
                    n = 0
                if n == 0:
                    self._close_pipe(run, fd)
                    break
                assert run.sink is not None
                run.sink.write(run.pipes[fd], self.view[:n])

    # -- exits -----------------------------------------------------------------------

    def _reap(self) -> None:
        """Reap every exited child: jobs get their status recorded, orphans just reaped."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            run = self.by_pid.pop(pid, None)
            try:
                _, status, rusage = os.wait4(pid, 0)
            except ChildProcessError:
                continue
            if run is None:
                continue  # an orphan re-parented to us (subreaper); nothing to record
            run.exited = True
            run.status = status
            run.rusage = rusage
            self._spawn_bg(self._finish(run))

    def _stop(self, run: Run, why: str) -> None:
        """Timeout or cancel: SIGTERM to the whole job, grace, then SIGKILL."""
        if run.stopping or run.exited:
            return  # already stopping, or finishing (leftovers are handled there)
        run.stopping = why
        if run.timer is not None:
            run.timer.cancel()
        log.info("%s: stopping (%s)", run.spec.exec_id, why)
        run.stop_task = self._spawn_bg(self._terminate(run, include_main=True))

    async def _members(self, run: Run) -> dict[int, int]:
        """{pid: start_ticks} of the job's live processes (the main one unless reaped)."""
        if run.in_cgroup and self.cgroups is not None:
            # The cgroup is exact and cheap; a job cannot leave it without root's help.
            found = self.cgroups.procs(run.spec.exec_id)
        else:
            procs = await self._scan_after(time.monotonic())
            others = {p for p in self.by_pid if p != run.pid}
            found = contain.members_by_sweep(
                procs,
                job_pid=run.pid,
                exec_id=run.spec.exec_id,
                supervisor_pid=self.pid,
                other_job_pids=others,
            )
        if run.exited:
            found.pop(run.pid, None)
        return found

    async def _scan_after(self, t: float) -> dict[int, contain.ProcInfo]:
        """A /proc snapshot taken after monotonic time ``t``; one scan serves every waiter.

        Scanning /proc costs milliseconds (more on a loaded box), so exits that
        arrive together share one scan, run in a thread off the loop.
        """
        while True:
            if self._scan is not None and self._scan[0] >= t:
                return self._scan[1]
            if self._scan_task is None or self._scan_task.done():
                self._scan_task = asyncio.get_running_loop().create_task(self._do_scan())
            await asyncio.shield(self._scan_task)

    async def _do_scan(self) -> None:
        taken = time.monotonic()
        procs = await asyncio.to_thread(contain.scan_procs)
        self._scan = (taken, procs)

    async def _terminate(self, run: Run, *, include_main: bool) -> None:
        """SIGTERM everything in the job, wait up to the grace period, SIGKILL the rest."""
        members = await self._members(run)
        self._note_leftovers(run, members)
        if include_main and not run.exited:
            with contextlib.suppress(OSError):
                os.killpg(run.pid, signal.SIGTERM)  # the job's own group (setsid: pgid == pid)
        for pid, ticks in members.items():
            contain.signal_process(pid, ticks, signal.SIGTERM)
        deadline = time.monotonic() + max(0.0, run.spec.kill_grace_s)
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            members = await self._members(run)
            self._note_leftovers(run, members)
            if not members and (run.exited or not include_main):
                return
        for _ in range(100):
            if run.in_cgroup and self.cgroups is not None:
                self.cgroups.kill(run.spec.exec_id)
            if not run.exited:
                with contextlib.suppress(OSError):
                    os.killpg(run.pid, signal.SIGKILL)
            members = await self._members(run)
            self._note_leftovers(run, members)
            if not members:
                return
            for pid, ticks in members.items():
                contain.signal_process(pid, ticks, signal.SIGKILL)
            await asyncio.sleep(_POLL_S)
        run.error = run.error or f"processes survived SIGKILL: {sorted(await self._members(run))}"

    def _note_leftovers(self, run: Run, members: dict[int, int]) -> None:
        run.leftovers.update(p for p in members if p != run.pid)

    async def _finish(self, run: Run) -> None:
        """The main process is gone: stop what it left, collect the output, record the exit."""
        exec_id = run.spec.exec_id
        try:
            if run.stop_task is not None:
                await run.stop_task
            elif run.spec.kill_leftovers:
                members = await self._members(run)
                if members:
                    log.info("%s: killing %d leftover process(es)", exec_id, len(members))
                    await self._terminate(run, include_main=False)
            self._drain_now(run)
            # Normally EOF is already here; a leftover we were told to keep may hold the pipe.
            if not run.pipes_closed.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run.pipes_closed.wait(), 1.0)
            self._drain_now(run)
            for fd in list(run.pipes):
                self._close_pipe(run, fd)
            log_bytes = dropped = 0
            if run.sink is not None:
                if run.sink.needs_copy:  # copying the tail can take a while: off the loop
                    log_bytes, dropped = await asyncio.to_thread(run.sink.finish)
                else:
                    log_bytes, dropped = run.sink.finish()
                run.error = run.error or run.sink.error
            record = self._exit_record(run, log_bytes, dropped)
            # tmp + rename + fsync, off the loop and grouped with every other exit
            # of the moment (group commit); pushed only once it is on disk.
            await self._persist_exit(run.run_dir / "exit.json", msgspec.json.encode(record))
        except Exception as exc:
            log.exception("%s: finishing failed", exec_id)
            record = self._exit_record(run, 0, 0, error=f"supervisor error while finishing: {exc}")
            with contextlib.suppress(OSError):
                write_json_atomic(run.run_dir / "exit.json", msgspec.json.encode(record))
        if run.timer is not None:
            run.timer.cancel()
        if run.in_cgroup and self.cgroups is not None:
            self.cgroups.remove_job(exec_id)
        self.runs.pop(exec_id, None)
        self.by_pid.pop(run.pid, None)
        self.unacked[exec_id] = record
        self._broadcast_exit(exec_id, record)
        self.idle.set()

    def _exit_record(self, run: Run, log_bytes: int, dropped: int, error: str = "") -> ExitRecord:
        exit_code = sig = None
        if run.status is not None:
            if os.WIFEXITED(run.status):
                exit_code = os.WEXITSTATUS(run.status)
            elif os.WIFSIGNALED(run.status):
                sig = os.WTERMSIG(run.status)
        if run.adopted:
            outcome = "lost"
        elif run.stopping == "timeout":
            outcome = "timeout"
        elif run.stopping == "cancelled":
            outcome = "cancelled"
        else:
            outcome = "exited"
        ru = run.rusage
        return ExitRecord(
            exec_id=run.spec.exec_id,
            outcome=outcome,  # type: ignore[arg-type]
            exit_code=exit_code,
            signal=sig,
            started_at=run.started_at,
            finished_at=time.time(),
            cpu_time_s=None if ru is None else round(ru.ru_utime + ru.ru_stime, 6),
            peak_rss_kb=self._peak_rss_kb(run),
            log_bytes=log_bytes,
            dropped_bytes=dropped,
            leftovers=sorted(run.leftovers),
            error=error or run.error,
            pid=run.pid,
        )

    def _peak_rss_kb(self, run: Run) -> int | None:
        """The job's peak RSS: ru_maxrss when it is above our own, else the sampled VmHWM."""
        maxrss = None if run.rusage is None else int(run.rusage.ru_maxrss)
        if maxrss is not None and maxrss > self.own_hwm_kb + 1024:
            return maxrss  # the job (or a descendant it waited for) outgrew the supervisor
        return run.hwm_kb  # None for a job too short to be sampled: unknown, and small

    def _broadcast_exit(self, exec_id: str, record: ExitRecord) -> None:
        for conn in list(self.conns):
            self._push_exit(conn, exec_id, record)

    def _push_exit(self, conn: _Conn, exec_id: str, record: ExitRecord) -> None:
        if exec_id in conn.delivered:
            return
        conn.delivered.add(exec_id)
        conn.send({"event": "exit", "record": msgspec.to_builtins(record)})

    async def _persist_exit(self, path: Path, data: bytes) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._exits_to_write.append((path, data, fut))
        if self._writer_task is None or self._writer_task.done():
            self._writer_task = self._spawn_bg(self._write_pending_exits())
        await fut

    async def _write_pending_exits(self) -> None:
        while self._exits_to_write:
            batch, self._exits_to_write = self._exits_to_write, []
            try:
                await asyncio.to_thread(_write_exit_files, [(p, d) for p, d, _ in batch])
            except Exception as exc:
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _spawn_bg(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task


_OPS = {
    "hello": Supervisor._op_hello,
    "start": Supervisor._op_start,
    "cancel": Supervisor._op_cancel,
    "list": Supervisor._op_list,
    "ack": Supervisor._op_ack,
}


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _write_exit_files(items: list[tuple[Path, bytes]]) -> None:
    """Write each exit record atomically, then make them all durable (one pass of fsyncs)."""
    for path, data in items:
        write_json_atomic(path, data, fsync=False)
    _fsync_files([path for path, _ in items])


def _fsync_files(paths: list[Path]) -> None:
    """fsync each file and its directory (once per directory), ignoring ones gone since."""
    dirs: set[Path] = set()
    for path in paths:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            dirs.add(path.parent)
    for d in dirs:
        with contextlib.suppress(OSError):
            fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _credentials(spec: RunSpec) -> tuple[int | None, int | None, list[int] | None]:
    """uid, gid and supplementary groups for the job.

    DESIGN.md: ``user=`` alone must not keep root's groups, so a uid without an
    explicit group list gets that user's own groups (or none).
    """
    uid, gid, groups = spec.uid, spec.gid, spec.groups
    if uid is not None and uid != os.getuid():
        try:
            pw = pwd.getpwuid(uid)
        except KeyError:
            pw = None
        if gid is None:
            gid = pw.pw_gid if pw is not None else uid
        if groups is None:
            groups = os.getgrouplist(pw.pw_name, gid) if pw is not None else [gid]
    return uid, gid, groups


def _spawn_error(spec: RunSpec, exc: Exception) -> str:
    what = spec.argv[0] if spec.argv else "(empty argv)"
    if not isinstance(exc, OSError):
        return f"could not start {what!r}: {exc}"
    if isinstance(exc, FileNotFoundError) and exc.filename == spec.cwd and spec.cwd:
        return f"working directory {spec.cwd!r} does not exist"
    if (
        isinstance(exc, (NotADirectoryError, FileNotFoundError))
        and spec.cwd
        and not os.path.isdir(spec.cwd)
    ):
        return f"working directory {spec.cwd!r} does not exist"
    if isinstance(exc, FileNotFoundError):
        return f"command {what!r} not found"
    if isinstance(exc, PermissionError):
        return f"permission denied starting {what!r} (in {spec.cwd or '/'}): {exc.strerror}"
    return f"could not start {what!r}: {exc.strerror or exc}"


async def _start_unix_server(handler: Any, path: Path) -> asyncio.AbstractServer:
    """Listen on ``path``, however long (agentd/unixpath.py)."""
    with reachable(path) as name:
        return await asyncio.start_unix_server(handler, path=name, limit=1 << 20)
